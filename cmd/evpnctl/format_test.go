package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/name.golden (or rewrites it with
// -rewrite).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *rewrite {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/evpnctl -rewrite to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -rewrite to accept it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// render runs a view and returns its output.
func render(t *testing.T, view func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := view(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func macTableOutput(t *testing.T, pages [][]*evpndv1.MAC) []byte {
	return render(t, func(b *bytes.Buffer) error {
		tab := newMACTable(b)
		for _, p := range pages {
			if err := tab.page(p); err != nil {
				return err
			}
		}
		return tab.finish()
	})
}

func routeTableOutput(t *testing.T, pages [][]*evpndv1.Route) []byte {
	return render(t, func(b *bytes.Buffer) error {
		tab := newRouteTable(b, newRouteInfo(fixtureStatus(), fixturePeers()))
		for _, p := range pages {
			if err := tab.page(p); err != nil {
				return err
			}
		}
		return tab.finish()
	})
}

// onePerPage splits rows into pages of one row.
func onePerPage[T any](rows []T) [][]T {
	var pages [][]T
	for _, r := range rows {
		pages = append(pages, []T{r})
	}
	return pages
}

func TestGoldenViews(t *testing.T) {
	for name, view := range map[string]func(*bytes.Buffer) error{
		"vni_list":       func(b *bytes.Buffer) error { return writeVNIList(b, fixtureVNIs(), fixtureL3VNIs().GetL3Vnis()) },
		"vni_list_empty": func(b *bytes.Buffer) error { return writeVNIList(b, &evpndv1.ListVNIsResponse{}, nil) },
		"vni_detail":     func(b *bytes.Buffer) error { return writeVNIDetails(b, fixtureVNIs().GetVnis(), nil) },
		"bgp_summary": func(b *bytes.Buffer) error {
			return writeBGPSummary(b, fixtureStatus(), fixturePeers(), false)
		},
		"bgp_summary_sent": func(b *bytes.Buffer) error {
			return writeBGPSummary(b, fixtureStatus(), fixturePeers(), true)
		},
		"status": func(b *bytes.Buffer) error { return writeStatus(b, fixtureStatus(), time.UTC) },
		"status_rr": func(b *bytes.Buffer) error {
			st := fixtureStatus()
			st.Role, st.VtepIp, st.Restarted, st.BgpSynced, st.KernelInSync = evpndv1.Role_ROLE_ROUTE_REFLECTOR, "", false, false, true
			st.Uptime = durationpb.New(50*time.Hour + 3*time.Second)
			st.RestartNeeded = nil
			return writeStatus(b, st, time.UTC)
		},
		"reload":          func(b *bytes.Buffer) error { return writeReload(b, fixtureReload()) },
		"mac_one_remote":  func(b *bytes.Buffer) error { return oneMAC(b, 100, "02:00:00:00:01:0c") },
		"mac_one_local":   func(b *bytes.Buffer) error { return oneMAC(b, 100, "02:00:00:00:00:01") },
		"mac_one_missing": func(b *bytes.Buffer) error { return oneMAC(b, 200, "02:00:00:00:00:01") },
		"reload_nothing": func(b *bytes.Buffer) error {
			return writeReload(b, &evpndv1.ReloadResponse{ConfigFile: "/etc/evpnd/evpnd.yaml"})
		},
		"check_drift": func(b *bytes.Buffer) error { return writeCheck(b, fixtureCheckDrift(), time.UTC) },
		"check_clean": func(b *bytes.Buffer) error { return writeCheck(b, fixtureCheckClean(), time.UTC) },
		"trace": func(b *bytes.Buffer) error {
			return writeTrace(b, &evpndv1.TraceRequest{Mac: "02:00:00:00:01:0b"}, fixtureTrace(), time.UTC)
		},
		"trace_empty": func(b *bytes.Buffer) error {
			return writeTrace(b, &evpndv1.TraceRequest{Vni: 100, Mac: "02:00:00:00:99:99"}, &evpndv1.TraceResponse{}, time.UTC)
		},
		"watch": func(b *bytes.Buffer) error {
			for _, ev := range fixtureWatch() {
				b.WriteString(watchLine(ev, time.UTC) + "\n")
			}
			return nil
		},
		"mac_table_empty":   func(b *bytes.Buffer) error { return newMACTable(b).finish() },
		"route_table_empty": func(b *bytes.Buffer) error { return newRouteTable(b, routeInfo{}).finish() },
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, render(t, view)) })
	}
}

// TestGoldenStreamedTables checks the MAC and route tables, and that the
// pages a table arrives in do not change it.
func TestGoldenStreamedTables(t *testing.T) {
	macs := fixtureMACs()
	whole := macTableOutput(t, [][]*evpndv1.MAC{macs})
	golden(t, "mac_table", whole)
	if paged := macTableOutput(t, onePerPage(macs)); !bytes.Equal(paged, whole) {
		t.Errorf("MAC table in pages of one differs:\n%s\nwhole:\n%s", paged, whole)
	}
	routes := fixtureRoutes()
	whole = routeTableOutput(t, [][]*evpndv1.Route{routes})
	golden(t, "route_table", whole)
	if paged := routeTableOutput(t, onePerPage(routes)); !bytes.Equal(paged, whole) {
		t.Errorf("route table in pages of one differs:\n%s\nwhole:\n%s", paged, whole)
	}
}

// TestMACTableColumns checks the fixed columns: every row whose values fit
// their widths starts each column where the header does, and a wider value
// pushes its row without cutting anything.
func TestMACTableColumns(t *testing.T) {
	out := string(macTableOutput(t, [][]*evpndv1.MAC{fixtureMACs()}))
	lines := strings.Split(out, "\n")
	header := lines[0]
	starts := []int{}
	for _, col := range []string{"MAC", "Type", "VTEP/Port", "Seq", "Flags", "Kernel", "Other VTEPs"} {
		i := strings.Index(header, col)
		if i < 0 {
			t.Fatalf("header lacks %q: %q", col, header)
		}
		starts = append(starts, i)
	}
	for _, l := range lines[1:4] { // rows with narrow values
		for _, s := range starts {
			if s >= len(l) {
				continue
			}
			if l[s-1] != ' ' {
				t.Errorf("row %q: no column starts at %d (header %q)", l, s, header)
			}
		}
	}
	if !strings.Contains(out, "fd00:0:0:ffff::1234 123456") {
		t.Errorf("wide VTEP or seq cut or unseparated:\n%s", out)
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing blank: %q", l)
		}
	}
}

func TestFormatDurations(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "+0ms"}, {400 * time.Microsecond, "+0.4ms"}, {12345 * time.Microsecond, "+12.3ms"},
		{1234567 * time.Microsecond, "+1.235s"}, {time.Minute + 3456*time.Millisecond, "+1m03.456s"},
	} {
		if got := fmtDelta(c.d); got != c.want {
			t.Errorf("fmtDelta(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "never"}, {7 * time.Second, "00:00:07"}, {25*time.Hour + 61*time.Second, "1d01h01m"},
		{15*24*time.Hour + 3*time.Hour, "2w1d03h"},
	} {
		if got := fmtUpDown(durationpb.New(c.d)); got != c.want {
			t.Errorf("fmtUpDown(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// oneMAC renders "show evpn mac vni V mac M" over the fixture MACs.
func oneMAC(b *bytes.Buffer, vni uint32, mac string) error {
	d := &macDetail{w: b, vni: vni, mac: mac}
	for _, m := range fixtureMACs() {
		if m.GetVni() == vni && m.GetMac() == mac {
			if err := d.page([]*evpndv1.MAC{m}); err != nil {
				return err
			}
		}
	}
	return d.finish()
}
