package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

func unmarshalJSON(b []byte, m proto.Message) error {
	return protojson.UnmarshalOptions{}.Unmarshal(b, m)
}

// TestCLIJSON decodes every command's -o json output as its response
// message and compares it with what the server sent.
func TestCLIJSON(t *testing.T) {
	sock := startFake(t, &fakeServer{})
	vnis := fixtureVNIs()
	for _, c := range []struct {
		args []string
		want proto.Message
		code int
	}{
		{[]string{"status"}, fixtureStatus(), 0},
		{[]string{"show", "evpn", "vni"}, vnis, 0},
		{[]string{"show", "evpn", "vni", "detail"}, vnis, 0},
		{[]string{"show", "evpn", "vni", "100"}, &evpndv1.GetVNIResponse{Vni: vnis.Vnis[0]}, 0},
		{[]string{"show", "evpn", "mac"}, &evpndv1.ListMACsResponse{Macs: fixtureMACs()}, 0},
		{[]string{"show", "evpn", "mac", "vni", "4242"}, &evpndv1.ListMACsResponse{}, 0},
		{[]string{"show", "evpn", "route"}, &evpndv1.ListRoutesResponse{Routes: fixtureRoutes()}, 0},
		{[]string{"show", "evpn", "route", "rd", "none:1"}, &evpndv1.ListRoutesResponse{}, 0},
		{[]string{"show", "bgp", "summary"}, fixturePeers(), 0},
		{[]string{"check"}, fixtureCheckDrift(), exitDrift},
		{[]string{"trace", "02:00:00:00:01:0b"}, fixtureTrace(), 0},
		{[]string{"trace", "02:00:00:00:01:0c"}, &evpndv1.TraceResponse{}, 0},
		{[]string{"clear", "evpn", "dup-addr", "vni", "100"}, &evpndv1.ClearDuplicateResponse{Cleared: 2}, 0},
		{[]string{"vni", "add", "7", "--rd", "10.0.0.1:7"}, &evpndv1.AddVNIResponse{Vni: &evpndv1.VNI{Vni: 7, Rd: "10.0.0.1:7", DevicesPresent: true}}, 0},
		{[]string{"vni", "del", "100"}, &evpndv1.DeleteVNIResponse{}, 0},
	} {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			r := runCLI(t, t.Context(), append([]string{"--socket", sock, "-o", "json"}, c.args...)...)
			if r.code != c.code || r.stderr != "" {
				t.Fatalf("exit %d (want %d), stderr %q", r.code, c.code, r.stderr)
			}
			got := c.want.ProtoReflect().New().Interface()
			if err := unmarshalJSON([]byte(r.stdout), got); err != nil {
				t.Fatalf("%v:\n%s", err, r.stdout)
			}
			if !proto.Equal(got, c.want) {
				t.Errorf("decodes as %v\nwant %v\noutput:\n%s", got, c.want, r.stdout)
			}
		})
	}
}

// TestCLIJSONStream checks a streamed list of 2500 MACs, in pages of
// 1000, decodes as one ListMACsResponse with every row in order.
func TestCLIJSONStream(t *testing.T) {
	const n = 2500
	sock := startFake(t, &fakeServer{pageSize: 1000, macCount: n, macGen: bigMAC})
	r := runCLI(t, t.Context(), "--socket", sock, "-o", "json", "show", "evpn", "mac")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got evpndv1.ListMACsResponse
	if err := unmarshalJSON([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.GetMacs()) != n {
		t.Fatalf("%d rows, want %d", len(got.GetMacs()), n)
	}
	if want := (&evpndv1.ListMACsResponse{Macs: manyMACs(n)}); !proto.Equal(&got, want) {
		t.Error("rows differ from what the server sent")
	}
	// One row per line, so that line tools work on it too: "{", the
	// field, n rows, "]", "}".
	if lines := strings.Count(r.stdout, "\n"); lines != n+4 {
		t.Errorf("%d lines for %d rows", lines, n)
	}
}
