package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

func TestDefaultSocketIsTheDaemons(t *testing.T) {
	if defaultSocket != configs.DefaultAPISocket {
		t.Errorf("evpnctl's default socket %q, evpnd's api.socket default %q", defaultSocket, configs.DefaultAPISocket)
	}
}

// TestCLIViews runs every read command against the fake server and
// compares its output with the views' goldens: the streamed pages and the
// flags must make no difference.
func TestCLIViews(t *testing.T) {
	f := &fakeServer{}
	sock := startFake(t, f)
	view := func(fn func(*bytes.Buffer) error) string { return string(render(t, fn)) }
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
		code int
	}{
		{[]string{"show", "evpn", "vni"}, goldenText("vni_list"), 0},
		{[]string{"show", "evpn", "vni", "detail"}, goldenText("vni_detail") + "\n" + goldenText("l3vni_detail"), 0}, // L2VNIs, then L3VNIs
		{[]string{"show", "evpn", "vni", "100"}, view(func(b *bytes.Buffer) error { return writeVNIDetail(b, fixtureVNIs().Vnis[0]) }), 0},
		{[]string{"show", "evpn", "mac"}, goldenText("mac_table"), 0},
		{[]string{"show", "evpn", "mac", "vni", "all"}, goldenText("mac_table"), 0},
		{[]string{"show", "evpn", "route"}, goldenText("route_table"), 0},
		{[]string{"show", "bgp", "summary"}, goldenText("bgp_summary"), 0},
		{[]string{"show", "bgp", "summary", "--sent"}, goldenText("bgp_summary_sent"), 0},
		{[]string{"status"}, goldenText("status"), 0},
		{[]string{"check"}, goldenText("check_drift"), exitDrift},
		{[]string{"reload"}, goldenText("reload"), exitPartial},
		{[]string{"show", "evpn", "mac", "vni", "100", "mac", "02:00:00:00:01:0C"}, goldenText("mac_one_remote"), 0},
		{[]string{"show", "evpn", "mac", "vni", "100", "mac", "02:00:00:00:00:01"}, goldenText("mac_one_local"), 0},
		{[]string{"show", "evpn", "mac", "vni", "200", "mac", "02:00:00:00:00:01"}, goldenText("mac_one_missing"), 0},
		{[]string{"trace", "02:00:00:00:01:0b"}, goldenText("trace"), 0},
		{[]string{"trace", "02:00:00:00:99:99", "vni", "100"}, goldenText("trace_empty"), 0},
		{[]string{"show", "evpn", "mac", "vni", "4242"}, goldenText("mac_table_empty"), 0},
		{[]string{"show", "evpn", "route", "rd", "1.1.1.1:1"}, goldenText("route_table_empty"), 0},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			r := runCLI(t, t.Context(), append([]string{"--socket", sock}, c.args...)...)
			if r.code != c.code || r.stderr != "" {
				t.Errorf("exit %d (want %d), stderr %q", r.code, c.code, r.stderr)
			}
			if r.stdout != c.want {
				t.Errorf("output:\n%s\nwant:\n%s", r.stdout, c.want)
			}
		})
	}
}

// TestCLIRequests checks that the words of each command become the right
// request, and what the command prints.
func TestCLIRequests(t *testing.T) {
	remote, local := evpndv1.MACSource_MAC_SOURCE_REMOTE, evpndv1.MACSource_MAC_SOURCE_LOCAL
	for _, c := range []struct {
		args    []string
		want    []proto.Message
		printed string
	}{
		{[]string{"show", "evpn", "mac", "vni", "100", "remote", "duplicate"},
			[]proto.Message{&evpndv1.ListMACsRequest{Vni: 100, Source: remote, DuplicatesOnly: true}}, "Displayed 2 MACs: 0 local, 2 remote, 2 duplicate"},
		{[]string{"show", "evpn", "mac", "local", "vni", "all"},
			[]proto.Message{&evpndv1.ListMACsRequest{Source: local}}, "Displayed 2 MACs: 2 local, 0 remote"},
		{[]string{"show", "evpn", "mac", "verify", "local"},
			[]proto.Message{&evpndv1.ListMACsRequest{Source: local, VerifyKernel: true}}, "Displayed 2 MACs: 2 local, 0 remote"},
		{[]string{"show", "evpn", "mac", "dup", "rem"}, // unique prefixes, as vtysh takes them
			[]proto.Message{&evpndv1.ListMACsRequest{Source: remote, DuplicatesOnly: true}}, "2 duplicate"},
		{[]string{"show", "evpn", "route", "type", "2", "vni", "100", "rd", "10.0.0.2:2"},
			[]proto.Message{&evpndv1.GetStatusRequest{}, &evpndv1.ListPeersRequest{}, &evpndv1.ListRoutesRequest{RouteType: 2, Vni: 100, Rd: "10.0.0.2:2"}},
			"Displayed 2 prefixes (3 paths)"},
		{[]string{"show", "evpn", "route", "type", "5"},
			[]proto.Message{&evpndv1.GetStatusRequest{}, &evpndv1.ListPeersRequest{}, &evpndv1.ListRoutesRequest{RouteType: 5}},
			"[5]:[0]:[24]:[172.16.1.0]"},
		{[]string{"show", "evpn", "route", "type", "multicast"},
			[]proto.Message{&evpndv1.GetStatusRequest{}, &evpndv1.ListPeersRequest{}, &evpndv1.ListRoutesRequest{RouteType: 3}},
			"Displayed 2 prefixes (2 paths)"},
		{[]string{"show", "evpn", "vni", "100"}, []proto.Message{&evpndv1.GetVNIRequest{Vni: 100}}, "VNI: 100"},
		{[]string{"show", "bgp", "summary"}, []proto.Message{&evpndv1.GetStatusRequest{}, &evpndv1.ListPeersRequest{}}, "Total number of neighbors 3"},
		{[]string{"show", "bgp", "summary", "--sent"}, []proto.Message{&evpndv1.GetStatusRequest{}, &evpndv1.ListPeersRequest{WithAdvertised: true}}, "PfxSnt"},
		{[]string{"check", "vni", "100"}, []proto.Message{&evpndv1.CheckRequest{Vni: 100}}, "DRIFT"},
		{[]string{"trace", "02-00-00-00-01-0B", "vni", "200"},
			[]proto.Message{&evpndv1.TraceRequest{Vni: 200, Mac: "02:00:00:00:01:0b"}}, "MAC 02:00:00:00:01:0b in VNI 200: 2 events"},
		{[]string{"clear", "evpn", "dup-addr", "vni", "100"},
			[]proto.Message{&evpndv1.ClearDuplicateRequest{Vni: 100}}, "Cleared the duplicate flag of every MAC in VNI 100: 2 MACs cleared."},
		{[]string{"clear", "evpn", "dup-addr", "mac", "02:00:00:00:01:0C", "vni", "100"},
			[]proto.Message{&evpndv1.ClearDuplicateRequest{Vni: 100, Mac: "02:00:00:00:01:0c"}}, "1 MAC cleared."},
		{[]string{"vni", "add", "300", "--vxlan-device", "vx300", "--bridge", "br300", "--access", "eth5,eth6", "--rd", "10.0.0.1:300",
			"--import-rt", "65000:300,65001:300", "--export-rt", "65000:300", "--udp-port", "4790", "--mtu", "9000"},
			[]proto.Message{&evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 300, VxlanDevice: "vx300", Bridge: "br300",
				AccessInterfaces: []string{"eth5", "eth6"}, Rd: "10.0.0.1:300", ImportRts: []string{"65000:300", "65001:300"},
				ExportRts: []string{"65000:300"}, UdpPort: 4790, Mtu: 9000}}},
			"Added L2VNI 300 (until evpnd restarts"},
		{[]string{"vni", "add", "301"}, []proto.Message{&evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 301}}}, "VNI: 301"},
		{[]string{"vni", "del", "100"}, []proto.Message{&evpndv1.DeleteVNIRequest{Vni: 100}}, "Deleted L2VNI 100."},
		{[]string{"show", "evpn", "mac", "vni", "100", "mac", "0200.0000.010b"},
			[]proto.Message{&evpndv1.ListMACsRequest{Vni: 100, Mac: "02:00:00:00:01:0b"}}, "Remote VTEP: 10.0.0.2"},
		{[]string{"reload"}, []proto.Message{&evpndv1.ReloadRequest{}}, "Needs a restart (1), not applied:\n  router-id: 10.0.0.1 -> 10.0.0.9"},
		{[]string{"vni", "delete", "100"}, []proto.Message{&evpndv1.DeleteVNIRequest{Vni: 100}}, "Deleted L2VNI 100."},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			f := &fakeServer{}
			sock := startFake(t, f)
			r := runCLI(t, t.Context(), append([]string{"--socket", sock}, c.args...)...)
			if r.code != 0 && !(c.args[0] == "check" && r.code == exitDrift) && !(c.args[0] == "reload" && r.code == exitPartial) {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			got := f.requests()
			if len(got) != len(c.want) {
				t.Fatalf("requests %v, want %v", got, c.want)
			}
			for i := range got {
				if !proto.Equal(got[i], c.want[i]) {
					t.Errorf("request %d: %v, want %v", i, got[i], c.want[i])
				}
			}
			if !strings.Contains(r.stdout, c.printed) {
				t.Errorf("output lacks %q:\n%s", c.printed, r.stdout)
			}
		})
	}
}

// TestCLIUsageErrors checks that mistakes on the command line fail with
// one clear line and exit status 2, before anything is asked of evpnd.
func TestCLIUsageErrors(t *testing.T) {
	f := &fakeServer{}
	sock := startFake(t, f)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "evpn", "mac", "vnii"}, `show evpn mac: "vnii" is not a keyword here (want vni, local, remote, duplicate, verify or mac)`},
		{[]string{"show", "evpn", "mac", "vni"}, `show evpn mac: "vni" needs a value: a VNI (1-16777215) or "all"`},
		{[]string{"show", "evpn", "mac", "vni", "0"}, `show evpn mac: vni "0" is not a VNI (want 1-16777215 or all)`},
		{[]string{"show", "evpn", "mac", "vni", "16777216"}, `"16777216" is not a VNI`},
		{[]string{"show", "evpn", "mac", "local", "remote"}, `show evpn mac: "local" and "remote" exclude each other`},
		{[]string{"show", "evpn", "mac", "vni", "1", "vni", "2"}, `show evpn mac: "vni" given twice`},
		{[]string{"show", "evpn", "mac", "mac", "02:00:00:00:00:01"}, `show evpn mac: "mac" needs one VNI: vni VNI mac MAC`},
		{[]string{"show", "evpn", "mac", "vni", "all", "mac", "02:00:00:00:00:01"}, `show evpn mac: "mac" needs one VNI`},
		{[]string{"show", "evpn", "mac", "vni", "100", "mac", "02:00"}, `show evpn mac: mac: "02:00" is not a MAC address`},
		{[]string{"show", "evpn", "route", "type", "4"}, `show evpn route: route type "4" is not supported (want 2, 3 or 5`},
		{[]string{"show", "evpn", "route", "vni", "all"}, `show evpn route: vni "all" is not a VNI (want 1-16777215)`},
		{[]string{"show", "evpn", "route", "r"}, `show evpn route: "rd" needs a value`},
		{[]string{"show", "evpn", "vni", "abc"}, `show evpn vni: "abc" is not a VNI (want 1-16777215), or "detail"`},
		{[]string{"show", "evpn", "vni", "1", "2"}, `show evpn vni: unexpected "2"`},
		{[]string{"show", "evpn", "macs"}, `show evpn: "macs" is not a command here (want arp-cache, mac, next-hops, rmac, route or vni); did you mean "mac"?`},
		{[]string{"show", "bgp", "summary", "x"}, `show bgp summary: unexpected "x"`},
		{[]string{"bogus"}, `evpnctl: "bogus" is not a command here`},
		{[]string{"trace"}, `trace: which MAC?`},
		{[]string{"trace", "zz"}, `trace: "zz" is not a MAC address (want the form 02:00:00:00:01:0b)`},
		{[]string{"trace", "vni", "100", "02:00:00:00:01:0b"}, `trace: the MAC comes first (usage: evpnctl trace MAC [vni VNI]`},
		{[]string{"trace", "02:00:00:00:01:0b", "vlan", "1"}, `trace: "vlan" is not a keyword here (want vni)`},
		{[]string{"check", "vni", "x"}, `check: vni "x" is not a VNI`},
		{[]string{"clear", "evpn", "dup-addr"}, `clear evpn dup-addr: which VNI?`},
		{[]string{"clear", "evpn", "dup-addr", "mac", "02:00:00:00:01:0b"}, `clear evpn dup-addr: which VNI?`},
		{[]string{"clear", "evpn", "dup-addr", "vni", "100", "mac", "x"}, `clear evpn dup-addr: mac "x" is not a MAC address`},
		{[]string{"vni", "add"}, `vni add: which VNI?`},
		{[]string{"vni", "add", "1", "2"}, `vni add: unexpected "2"`},
		{[]string{"vni", "add", "1", "--bogus"}, `unknown flag: --bogus`},
		{[]string{"vni", "del", "x"}, `vni del: "x" is not a VNI`},
		{[]string{"-o", "yaml", "status"}, `-o/--output: "yaml" is not a format (want table or json)`},
		{[]string{"--timeout", "0s", "status"}, `--timeout 0s: want a positive duration`},
		{[]string{"status", "now"}, `status: unexpected "now"`},
		{[]string{"watch", "x"}, `watch: unexpected "x"`},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			r := runCLI(t, t.Context(), append([]string{"--socket", sock}, c.args...)...)
			if r.code != exitError {
				t.Errorf("exit %d, want %d", r.code, exitError)
			}
			if !strings.HasPrefix(r.stderr, "evpnctl: ") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr %q, want one line with %q", r.stderr, c.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("usage errors sent requests: %v", reqs)
	}
}

func TestCLIConnectionFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--address", "192.0.2.1:50051", "status"}, "--address 192.0.2.1:50051: plaintext TCP is allowed to loopback only; give --tls-ca"},
		{[]string{"--address", "nocolon", "status"}, `--address "nocolon": want host:port`},
		{[]string{"--tls-ca", "ca.pem", "status"}, "--tls-ca, --tls-cert and --tls-key apply to --address only"},
		{[]string{"--address", "127.0.0.1:1", "--socket", "/x", "status"}, "give --socket or --address, not both"},
		{[]string{"--address", "127.0.0.1:1", "--tls-cert", "c.pem", "status"}, "--tls-cert and --tls-key need --tls-ca"},
		{[]string{"--address", "127.0.0.1:1", "--tls-ca", "/nonexistent/ca.pem", "status"}, "--tls-ca: open /nonexistent/ca.pem: no such file or directory"},
	} {
		r := runCLI(t, t.Context(), c.args...)
		if r.code != exitError || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

func TestCLIServerErrors(t *testing.T) {
	sock := startFake(t, &fakeServer{})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "evpn", "vni", "42"}, "evpnctl: VNI 42 is not configured (neither an L2VNI nor a VRF's L3VNI)\n"},
		{[]string{"vni", "del", "42"}, "evpnctl: VNI 42 is not configured\n"},
		{[]string{"vni", "add", "300", "--rd", "bad"}, "evpnctl: vni.rd: \"bad\" is not a route distinguisher (want IP:N or ASN:N)\n"},
	} {
		r := runCLI(t, t.Context(), append([]string{"--socket", sock}, c.args...)...)
		if r.code != exitError || r.stderr != c.want || r.stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want 2 and %q", c.args, r.code, r.stderr, r.stdout, c.want)
		}
	}
}

// TestCLIDaemonNotRunning checks the one line an operator gets when evpnd
// is not there, for unary calls, streams and watch, and that it comes at
// once rather than after --timeout.
func TestCLIDaemonNotRunning(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing", "evpnd.sock")
	want := fmt.Sprintf("evpnctl: cannot reach evpnd at %s: no such file or directory (is evpnd running? "+
		"start it with \"evpnd run\", or point --socket or EVPND_SOCKET at its api.socket)\n", missing)
	for _, args := range [][]string{
		{"status"}, {"show", "evpn", "mac"}, {"show", "evpn", "route"}, {"-o", "json", "show", "evpn", "route"},
		{"watch"}, {"check"}, {"vni", "add", "5"},
	} {
		start := time.Now()
		r := runCLI(t, t.Context(), append([]string{"--socket", missing, "--timeout", "30s"}, args...)...)
		if r.code != exitError || r.stderr != want || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q\nwant exit 2 and %q", args, r.code, r.stdout, r.stderr, want)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%v: took %v: evpnctl waited for evpnd instead of failing fast", args, d)
		}
	}

	// A socket left behind by an evpnd that is gone: connection refused.
	stale := socketPath(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	r := runCLI(t, t.Context(), "--socket", stale, "status")
	if r.code != exitError || !strings.Contains(r.stderr, stale+": connection refused (nobody listens on it") {
		t.Errorf("stale socket: exit %d, stderr %q", r.code, r.stderr)
	}

	// A path that is not a socket.
	r = runCLI(t, t.Context(), "--socket", t.TempDir(), "status")
	if r.code != exitError || !strings.Contains(r.stderr, ": not a socket (point --socket or EVPND_SOCKET at evpnd's api.socket)") {
		t.Errorf("directory as socket: exit %d, stderr %q", r.code, r.stderr)
	}

	// Nothing on a TCP port.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	r = runCLI(t, t.Context(), "--address", addr, "status")
	if r.code != exitError || !strings.Contains(r.stderr, "cannot reach evpnd at "+addr+": connection refused (is evpnd running, with api.listen set to this address?)") {
		t.Errorf("closed TCP port: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestUnreachablePermission checks the hint for a socket this user may
// not open (tests run as root, which no socket mode stops).
func TestUnreachablePermission(t *testing.T) {
	c := &client{where: "/run/evpnd/evpnd.sock"}
	err := c.unreachable(&net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)})
	want := "cannot reach evpnd at /run/evpnd/evpnd.sock: permission denied (the socket is for root and the members of evpnd's api.socket-group: run evpnctl as one of them)"
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err, want)
	}
}

func TestCLIEnvSocket(t *testing.T) {
	sock := startFake(t, &fakeServer{})
	t.Setenv("EVPND_SOCKET", sock)
	r := runCLI(t, t.Context(), "status")
	if r.code != 0 || !strings.Contains(r.stdout, "Router ID:") {
		t.Errorf("with EVPND_SOCKET: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCLICheckExitStatus(t *testing.T) {
	f := &fakeServer{}
	sock := startFake(t, f)
	for _, c := range []struct {
		check *evpndv1.CheckResponse
		args  []string
		code  int
		want  string
	}{
		{fixtureCheckDrift(), nil, exitDrift, "DRIFT: 4 entries differ"},
		{fixtureCheckDrift(), []string{"-o", "json"}, exitDrift, `"drifts"`},
		{fixtureCheckClean(), nil, exitOK, "No drift"},
		{fixtureCheckClean(), []string{"-o", "json"}, exitOK, `"checkedMacs"`},
		{&evpndv1.CheckResponse{InFlight: 7}, nil, exitOK, "In flight: 7 kernel writes"},
	} {
		f.check = c.check
		r := runCLI(t, t.Context(), append([]string{"--socket", sock, "check"}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stdout, c.want) || r.stderr != "" {
			t.Errorf("check %v: exit %d (want %d), stderr %q, output:\n%s", c.args, r.code, c.code, r.stderr, r.stdout)
		}
	}
	r := runCLI(t, t.Context(), "--socket", filepath.Join(t.TempDir(), "none"), "check")
	if r.code != exitError {
		t.Errorf("check without evpnd: exit %d, want %d", r.code, exitError)
	}
}

// TestCLIWatch runs watch until "Ctrl-C" (its context ends) and checks
// each line, in both formats, and that it ends cleanly.
func TestCLIWatch(t *testing.T) {
	events := fixtureWatch()
	f := &fakeServer{watch: events}
	sock := startFake(t, f)
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var out, errb syncBuffer
			done := make(chan int)
			go func() { done <- runCLITo(ctx, &out, &errb, "--socket", sock, "-o", format, "watch", "--initial") }()
			waitFor(t, "every event printed", func() bool { return strings.Count(out.String(), "\n") == len(events) })
			cancel()
			if code := <-done; code != 0 || errb.String() != "" {
				t.Errorf("watch ended with exit %d, stderr %q", code, errb.String())
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != len(events) {
				t.Fatalf("%d lines for %d events:\n%s", len(lines), len(events), out.String())
			}
			for i, l := range lines {
				if format == "table" {
					if want := watchLine(events[i], time.UTC); l != want {
						t.Errorf("line %d: %q, want %q", i, l, want)
					}
					continue
				}
				var ev evpndv1.WatchResponse
				if err := unmarshalJSON([]byte(l), &ev); err != nil {
					t.Errorf("line %d: %v: %s", i, err, l)
				} else if !proto.Equal(&ev, events[i]) {
					t.Errorf("line %d decodes as %v, want %v", i, &ev, events[i])
				}
			}
		})
	}
	reqs := f.requests()
	if len(reqs) != 2 || !proto.Equal(reqs[0], &evpndv1.WatchRequest{InitialState: true}) {
		t.Errorf("requests %v", reqs)
	}
}

// TestCLIStreamsPages checks that tables print each page as it arrives:
// the fake server sends the second page only once the first is on the
// client's stdout, which a client buffering the table would never do.
func TestCLIStreamsPages(t *testing.T) {
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			var out syncBuffer
			f := &fakeServer{pageSize: 100, macCount: 300, macGen: bigMAC}
			f.beforePage = func(page int) {
				last := bigMAC(page*100 - 1).GetMac()
				waitFor(t, fmt.Sprintf("page %d on stdout before page %d is sent", page, page+1),
					func() bool { return strings.Contains(out.String(), last) })
			}
			sock := startFake(t, f)
			var errb bytes.Buffer
			if code := runCLITo(t.Context(), &out, &errb, "--socket", sock, "-o", format, "show", "evpn", "mac"); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if n := strings.Count(out.String(), "02:00:00:"); n != 300 {
				t.Errorf("%d MACs printed, want 300", n)
			}
		})
	}
}

// TestCLITimeout checks --timeout on a call and on a stream that stalls.
func TestCLITimeout(t *testing.T) {
	sock := startFake(t, &fakeServer{block: true, pageSize: 1})
	for _, args := range [][]string{{"check"}, {"show", "evpn", "mac"}} {
		r := runCLI(t, t.Context(), append([]string{"--socket", sock, "--timeout", "300ms"}, args...)...)
		want := fmt.Sprintf("evpnctl: no answer from evpnd at %s within 300ms (raise --timeout?)\n", sock)
		if r.code != exitError || r.stderr != want {
			t.Errorf("%v: exit %d, stderr %q, want %q", args, r.code, r.stderr, want)
		}
	}
}

func TestCLITCP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, &fakeServer{}, lis)
	r := runCLI(t, t.Context(), "--address", lis.Addr().String(), "status")
	if r.code != 0 || !strings.Contains(r.stdout, "Router ID:") {
		t.Errorf("plaintext loopback TCP: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestCLITLS serves the API with TLS and client certificates, as evpnd
// does with api.tls.client-ca.
func TestCLITLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil)
	newCert(t, dir, "server", ca, caKey)
	newCert(t, dir, "client", ca, caKey)
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, &fakeServer{}, lis, grpc.Creds(creds))
	addr := lis.Addr().String()
	p := func(name string) string { return filepath.Join(dir, name) }

	r := runCLI(t, t.Context(), "--address", addr, "--tls-ca", p("ca.pem"), "--tls-cert", p("client.pem"), "--tls-key", p("client.key"), "status")
	if r.code != 0 || !strings.Contains(r.stdout, "Router ID:") {
		t.Errorf("mutual TLS: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, t.Context(), "--address", addr, "--tls-ca", p("ca.pem"), "status")
	if r.code != exitError || !strings.Contains(r.stderr, "give --tls-cert and --tls-key)\n") {
		t.Errorf("TLS without a client certificate: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, t.Context(), "--address", addr, "--tls-ca", p("client.pem"), "--tls-cert", p("client.pem"), "--tls-key", p("client.key"), "status")
	if r.code != exitError || !strings.Contains(r.stderr, "cannot reach evpnd at "+addr+": transport: authentication handshake failed") ||
		!strings.Contains(r.stderr, "(is --tls-ca the CA that signed evpnd's api.tls.cert?)") {
		t.Errorf("TLS with the wrong CA: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, t.Context(), "--address", addr, "status")
	if r.code != exitError || !strings.Contains(r.stderr, "(does evpnd use TLS on this address? give --tls-ca)") {
		t.Errorf("plaintext to TLS: exit %d, stderr %q", r.code, r.stderr)
	}
}

// newCert writes name.pem and name.key in dir: a CA when parent is nil,
// else a certificate for 127.0.0.1 signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "evpnctl test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	err = errors.Join(
		os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600),
		os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestCLICompletion checks cobra's completion scripts and the completion
// of the keyword grammars, including VNIs asked of evpnd.
func TestCLICompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "__start_evpnctl", "zsh": "#compdef evpnctl", "fish": "complete -c evpnctl", "powershell": "Register-ArgumentCompleter",
	} {
		r := runCLI(t, t.Context(), "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s: exit %d, stderr %q, script lacks %q", shell, r.code, r.stderr, want)
		}
	}
	sock := startFake(t, &fakeServer{})
	for _, c := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"show", "evpn", ""}, []string{"mac", "route", "vni", "arp-cache", "rmac", "next-hops"}, nil},
		{[]string{"show", "evpn", "rmac", "vni", ""}, []string{"all", "4001"}, []string{"100"}},
		{[]string{"show", "evpn", "next-hops", ""}, []string{"vni"}, nil},
		{[]string{"show", "evpn", "arp-cache", "vni", ""}, []string{"all", "100"}, nil},
		{[]string{"show", "ip", "route", ""}, []string{"vrf"}, nil},
		{[]string{"show", "ip", "route", "vrf", ""}, []string{"red"}, []string{"4001"}},
		{[]string{"show", "evpn", "mac", ""}, []string{"vni", "local", "remote", "duplicate"}, nil},
		{[]string{"show", "evpn", "mac", "local", ""}, []string{"vni", "duplicate"}, []string{"remote", "local"}},
		{[]string{"show", "evpn", "mac", "vni", ""}, []string{"all", "100", "16777215"}, []string{"duplicate"}},
		{[]string{"show", "evpn", "route", ""}, []string{"type", "vni", "rd"}, nil},
		{[]string{"show", "evpn", "route", "type", ""}, []string{"2", "3", "5"}, []string{"vni"}},
		{[]string{"show", "evpn", "vni", ""}, []string{"detail", "100"}, nil},
		{[]string{"vni", "del", ""}, []string{"100", "16777215"}, nil},
		{[]string{"check", ""}, []string{"vni"}, nil},
		{[]string{"trace", "02:00:00:00:01:0b", ""}, []string{"vni"}, nil},
		{[]string{"clear", "evpn", "dup-addr", ""}, []string{"vni", "mac"}, nil},
		{[]string{"-o", ""}, []string{"table", "json"}, nil},
	} {
		r := runCLI(t, t.Context(), append([]string{"__complete", "--socket", sock}, c.args...)...)
		got := map[string]bool{}
		for _, l := range strings.Split(r.stdout, "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				got[strings.SplitN(l, "\t", 2)[0]] = true
			}
		}
		for _, w := range c.want {
			if !got[w] {
				t.Errorf("completing %q: no %q in %q", c.args, w, r.stdout)
			}
		}
		for _, w := range c.not {
			if got[w] {
				t.Errorf("completing %q: %q offered: %q", c.args, w, r.stdout)
			}
		}
	}
}

func TestNewRootCmd(t *testing.T) {
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "show evpn mac vni 100 remote") {
		t.Errorf("--help: %v\n%s", err, out.String())
	}
	out.Reset()
	root = newRootCmd(&out, &errb)
	root.SetArgs([]string{"show", "evpn", "mac", "--help"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "mac [vni VNI|all] [local|remote] [duplicate]") {
		t.Errorf("show evpn mac --help: %v\n%s", err, out.String())
	}
}

// TestCLIWatchResync: when evpnd cuts the watch off (the client fell
// behind), evpnctl says so and watches again from the current state;
// with --no-resync it exits 2 instead.
func TestCLIWatchResync(t *testing.T) {
	events := fixtureWatch()
	f := &fakeServer{watch: events, watchCutOnce: true}
	sock := startFake(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int)
	go func() { done <- runCLITo(ctx, &out, &errb, "--socket", sock, "watch") }()
	waitFor(t, "events printed twice", func() bool { return strings.Count(out.String(), "\n") == 2*len(events) })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if !strings.Contains(errb.String(), "events were dropped") || !strings.Contains(errb.String(), "watching again") {
		t.Errorf("stderr %q", errb.String())
	}
	var watches []proto.Message
	for _, r := range f.requests() {
		if _, ok := r.(*evpndv1.WatchRequest); ok {
			watches = append(watches, r)
		}
	}
	if len(watches) != 2 || !proto.Equal(watches[0], &evpndv1.WatchRequest{}) || !proto.Equal(watches[1], &evpndv1.WatchRequest{InitialState: true}) {
		t.Errorf("watch requests %v: want a plain one, then one with the initial state", watches)
	}

	f2 := &fakeServer{watch: events, watchCutOnce: true}
	r := runCLI(t, t.Context(), "--socket", startFake(t, f2), "watch", "--no-resync")
	if r.code != exitError || !strings.Contains(r.stderr, "events were dropped") {
		t.Errorf("--no-resync: exit %d, stderr %q", r.code, r.stderr)
	}
}
