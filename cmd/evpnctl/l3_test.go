package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// TestGoldenL3Views checks the layer-3 views against their goldens.
func TestGoldenL3Views(t *testing.T) {
	arp := func(pages [][]*evpndv1.ARPEntry) func(*bytes.Buffer) error {
		return func(b *bytes.Buffer) error {
			tab := newARPTable(b)
			for _, p := range pages {
				if err := tab.page(p); err != nil {
					return err
				}
			}
			return tab.finish()
		}
	}
	routes := func(pages [][]*evpndv1.VRFRoute) func(*bytes.Buffer) error {
		return func(b *bytes.Buffer) error {
			tab := newVRFRouteTable(b, "red")
			for _, p := range pages {
				if err := tab.page(p); err != nil {
					return err
				}
			}
			return tab.finish()
		}
	}
	for name, view := range map[string]func(*bytes.Buffer) error{
		"arp_cache":          arp([][]*evpndv1.ARPEntry{fixtureARP()}),
		"arp_cache_empty":    arp(nil),
		"rmac":               func(b *bytes.Buffer) error { return writeRMACs(b, fixtureRMACs()) },
		"rmac_empty":         func(b *bytes.Buffer) error { return writeRMACs(b, &evpndv1.ListRouterMACsResponse{}) },
		"next_hops":          func(b *bytes.Buffer) error { return writeNextHops(b, fixtureNextHops()) },
		"ip_route_vrf":       routes([][]*evpndv1.VRFRoute{fixtureVRFRoutes()}),
		"ip_route_vrf_empty": routes(nil),
		"l3vni_detail":       func(b *bytes.Buffer) error { return writeL3VNIDetail(b, fixtureL3VNIs().GetL3Vnis()[0]) },
		"check_drift_l3":     func(b *bytes.Buffer) error { return writeCheck(b, fixtureCheckDriftL3(), time.UTC) },
	} {
		t.Run(name, func(t *testing.T) { golden(t, name, render(t, view)) })
	}
	// Pages do not change the streamed tables.
	if a, b := render(t, arp([][]*evpndv1.ARPEntry{fixtureARP()})), render(t, arp(onePerPage(fixtureARP()))); !bytes.Equal(a, b) {
		t.Errorf("ARP table in pages of one differs:\n%s\nwhole:\n%s", b, a)
	}
	if a, b := render(t, routes([][]*evpndv1.VRFRoute{fixtureVRFRoutes()})), render(t, routes(onePerPage(fixtureVRFRoutes()))); !bytes.Equal(a, b) {
		t.Errorf("route table in pages of one differs:\n%s\nwhole:\n%s", b, a)
	}
}

// TestCLIL3 runs the layer-3 commands against the fake server: their
// output is the golden view, their request carries the words given, and
// -o json decodes as the response.
func TestCLIL3(t *testing.T) {
	f := &fakeServer{}
	sock := startFake(t, f)
	goldenText := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		args []string
		want string
		req  proto.Message
		json proto.Message
	}{
		{[]string{"show", "evpn", "arp-cache", "vni", "all"}, goldenText("arp_cache"), &evpndv1.ListARPCacheRequest{},
			&evpndv1.ListARPCacheResponse{Entries: fixtureARP()}},
		{[]string{"show", "evpn", "arp-cache", "vni", "200"}, "", &evpndv1.ListARPCacheRequest{Vni: 200},
			&evpndv1.ListARPCacheResponse{Entries: fixtureARP()[3:]}},
		{[]string{"show", "evpn", "rmac", "vni", "4001"}, goldenText("rmac"), &evpndv1.ListRouterMACsRequest{L3Vni: 4001}, fixtureRMACs()},
		{[]string{"show", "evpn", "rmac", "vni", "all"}, goldenText("rmac"), &evpndv1.ListRouterMACsRequest{}, fixtureRMACs()},
		{[]string{"show", "evpn", "next-hops", "vni", "4001"}, goldenText("next_hops"), &evpndv1.ListL3NextHopsRequest{L3Vni: 4001}, fixtureNextHops()},
		{[]string{"show", "ip", "route", "vrf", "red"}, goldenText("ip_route_vrf"), &evpndv1.ListVRFRoutesRequest{Vrf: "red"},
			&evpndv1.ListVRFRoutesResponse{Routes: fixtureVRFRoutes()}},
		{[]string{"show", "evpn", "vni", "4001"}, goldenText("l3vni_detail"), &evpndv1.GetL3VNIRequest{L3Vni: 4001},
			&evpndv1.GetL3VNIResponse{L3Vni: fixtureL3VNIs().GetL3Vnis()[0]}},
		{[]string{"show", "evpn", "route", "type", "5"}, "", &evpndv1.ListRoutesRequest{RouteType: 5}, nil},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			f.mu.Lock()
			f.reqs = nil
			f.mu.Unlock()
			r := runCLI(t, t.Context(), append([]string{"--socket", sock}, c.args...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if c.want != "" && r.stdout != c.want {
				t.Errorf("output:\n%s\nwant:\n%s", r.stdout, c.want)
			}
			found := false
			for _, q := range f.requests() {
				found = found || proto.Equal(q, c.req)
			}
			if !found {
				t.Errorf("requests %v, want one %v", f.requests(), c.req)
			}
			if c.json == nil {
				return
			}
			r = runCLI(t, t.Context(), append([]string{"--socket", sock, "-o", "json"}, c.args...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("json: exit %d, stderr %q", r.code, r.stderr)
			}
			got := c.json.ProtoReflect().New().Interface()
			if err := unmarshalJSON([]byte(r.stdout), got); err != nil {
				t.Fatalf("%v:\n%s", err, r.stdout)
			}
			if !proto.Equal(got, c.json) {
				t.Errorf("json decodes as %v\nwant %v", got, c.json)
			}
		})
	}
}

// TestCLIL3Errors: usage errors send nothing; unknown VNIs and VRFs come
// back as one line naming them.
func TestCLIL3Errors(t *testing.T) {
	f := &fakeServer{}
	sock := startFake(t, f)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "ip", "route"}, `show ip route: which VRF?`},
		{[]string{"show", "ip", "route", "vrf"}, `show ip route: "vrf" needs a value: a VRF's name`},
		{[]string{"show", "ip", "route", "table", "1"}, `show ip route: "table" is not a keyword here (want vrf)`},
		{[]string{"show", "evpn", "rmac", "vni", "x"}, `show evpn rmac: vni "x" is not an L3VNI (want 1-16777215 or all)`},
		{[]string{"show", "evpn", "next-hops", "vni", "0"}, `show evpn next-hops: vni "0" is not an L3VNI`},
		{[]string{"show", "evpn", "arp-cache", "vni", "x"}, `show evpn arp-cache: vni "x" is not a VNI (want 1-16777215 or all)`},
	} {
		r := runCLI(t, t.Context(), append([]string{"--socket", sock}, c.args...)...)
		if r.code != exitError || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2 and %q", c.args, r.code, r.stderr, r.stdout, c.want)
		}
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("usage errors sent requests: %v", reqs)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "ip", "route", "vrf", "blue"}, "evpnctl: VRF blue is not configured\n"},
		{[]string{"show", "evpn", "rmac", "vni", "4002"}, "evpnctl: L3VNI 4002 is not configured (no VRF has it)\n"},
		{[]string{"show", "evpn", "next-hops", "vni", "100"}, "evpnctl: L3VNI 100 is not configured (no VRF has it)\n"},
		{[]string{"show", "evpn", "arp-cache", "vni", "300"}, "evpnctl: VNI 300 is not an L2VNI routed in a VRF\n"},
		{[]string{"show", "evpn", "vni", "42"}, "evpnctl: VNI 42 is not configured (neither an L2VNI nor a VRF's L3VNI)\n"},
	} {
		r := runCLI(t, t.Context(), append([]string{"--socket", sock}, c.args...)...)
		if r.code != exitError || r.stderr != c.want || r.stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2 and %q", c.args, r.code, r.stderr, r.stdout, c.want)
		}
	}
}
