package interop

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// These tests run the checks of the live interop tests on FRR 8.4 output
// captured from them (go test ./cmd/evpnd/interop/ -rewrite, as root), so
// that the parser and the checks are tested without root or FRR, and a
// check that cannot fail shows up here.

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGoldenRRTable(t *testing.T) {
	table, err := parseEVPNTable(readGolden(t, "frr-8.4-rr-table.json"))
	if err != nil {
		t.Fatal(err)
	}
	both := func() []wantRoute {
		return append(evpndRoutes("10.0.0.1", "10.0.0.1", mac1), evpndRoutes("10.0.0.2", "10.0.0.2", mac2)...)
	}
	if err := checkRoutes(table, both()); err != nil {
		t.Fatalf("evpnd's routes as FRR's route reflector shows them:\n%v", err)
	}

	// Every field the check looks at must be able to fail it.
	for _, tc := range []struct {
		name   string
		mutate func(ws []wantRoute) []wantRoute
		want   string // in the error
	}{
		{"RD", func(ws []wantRoute) []wantRoute { ws[0].RD = "10.0.0.1:1"; return ws }, "not in the table"},
		{"next hop", func(ws []wantRoute) []wantRoute { ws[1].NextHop = "10.0.0.9"; return ws }, "next hops"},
		{"RT", func(ws []wantRoute) []wantRoute { ws[1].Ecomms = []string{"ET:8", "RT:65000:200"}; return ws }, "extended communities"},
		{"mobility", func(ws []wantRoute) []wantRoute { ws[1].Ecomms = []string{"ET:8", "MM:1", "RT:65000:100"}; return ws }, "extended communities"},
		{"PMSI label", func(ws []wantRoute) []wantRoute { ws[0].PMSI = 200; return ws }, "PMSI"},
		{"VNI", func(ws []wantRoute) []wantRoute { ws[1].VNI = "200"; return ws }, "VNI"},
		{"peer", func(ws []wantRoute) []wantRoute { ws[1].From = "10.0.0.254"; return ws }, "received from"},
		{"originator", func(ws []wantRoute) []wantRoute { ws[1].Originator = "10.0.0.1"; return ws }, "originator ID"},
		{"MAC", func(ws []wantRoute) []wantRoute { ws[1].MAC = mac3; return ws }, "mac"},
		{"type", func(ws []wantRoute) []wantRoute { ws[0].Type = 2; return ws }, "routeType"},
		{"extra route", func(ws []wantRoute) []wantRoute { return append(ws[:1], ws[2:]...) }, "unexpected route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRoutes(table, tc.mutate(both()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("check = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestGoldenMovedTable(t *testing.T) {
	table, err := parseEVPNTable(readGolden(t, "frr-8.4-leaf-moved-table.json"))
	if err != nil {
		t.Fatal(err)
	}
	// After h3 moved from the FRR leaf to evpnd's leaf2: only evpnd's route,
	// reflected by evpnd's route reflector, with sequence number 1.
	rs := table.routesFor(mac3)
	r, ok := rs["10.0.0.2:100"]
	if len(rs) != 1 || !ok {
		t.Fatalf("routes for %s in RDs %v, want only 10.0.0.2:100", mac3, rdsOf(rs))
	}
	if seq, err := r.paths()[0].mobilitySeq(); err != nil || seq != 1 {
		t.Errorf("mobility sequence = %d (%v), want 1", seq, err)
	}
	moved := wantRoute{
		RD: "10.0.0.2:100", Prefix: "[2]:[0]:[48]:[" + mac3 + "]", Type: 2, MAC: mac3, VNI: "100",
		NextHop: "10.0.0.2", From: "10.0.0.254", Originator: "10.0.0.2",
		Ecomms: []string{"ET:8", "MM:1", "RT:65000:100"},
	}
	if err := moved.check(table); err != nil {
		t.Error(err)
	}
	// FRR's own routes carry no originator ID and come from peer 0.0.0.0.
	var local int
	for _, prefixes := range table {
		for _, r := range prefixes {
			for _, p := range r.paths() {
				if p.Local {
					local++
					if p.Peer.PeerID != "0.0.0.0" || p.OriginatorID != "" {
						t.Errorf("FRR's local path %s: peer %q originator %q", r.Prefix, p.Peer.PeerID, p.OriginatorID)
					}
				}
			}
		}
	}
	if local == 0 {
		t.Error("no local path of FRR in the table")
	}
}

func TestGoldenSummary(t *testing.T) {
	var s bgpSummary
	if err := json.Unmarshal(readGolden(t, "frr-8.4-rr-summary.json"), &s); err != nil {
		t.Fatal(err)
	}
	if s.RouterID != "10.0.0.254" || s.AS != 65000 {
		t.Errorf("router ID %q AS %d", s.RouterID, s.AS)
	}
	if err := s.checkPeers("10.0.0.1", "10.0.0.2"); err != nil {
		t.Error(err)
	}
	for _, p := range []string{"10.0.0.1", "10.0.0.2"} {
		if !s.Peers[p].DynamicPeer {
			t.Errorf("peer %s: not a dynamic peer (bgp listen range)", p)
		}
	}
	if err := s.checkPeers("10.0.0.3"); err == nil {
		t.Error("checkPeers accepts a peer that is not in the summary")
	}
	idle := s
	idle.Peers = map[string]bgpPeerSt{"10.0.0.1": {State: "Active"}}
	if err := idle.checkPeers("10.0.0.1"); err == nil {
		t.Error("checkPeers accepts a peer that is not Established")
	}
}
