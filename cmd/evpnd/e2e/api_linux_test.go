package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/emptypb"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// apiSocket is where every evpnd node of the test topologies serves its
// API, inside the node (the lab binds a per-node directory there).
const apiSocket = "/run/evpnd/evpnd.sock"

// client connects to a node's API socket from the test process (Unix
// sockets are files, not bound to a network namespace).
func (f *fabric) client(node string) evpndv1.EvpndServiceClient {
	f.t.Helper()
	path := ""
	for _, n := range f.lab.Topology().Nodes {
		if n.Name == node {
			path = n.HostPath(apiSocket)
		}
	}
	if path == "" || path == apiSocket {
		f.t.Fatalf("%s: no per-node bind for %s in the topology", node, apiSocket)
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { conn.Close() })
	return evpndv1.NewEvpndServiceClient(conn)
}

// recvAll reads a paged stream to its end and returns every row.
func recvAll[P, T any](st interface{ Recv() (*P, error) }, rows func(*P) []T) ([]T, error) {
	var out []T
	for {
		page, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rows(page)...)
	}
}

func listMACs(ctx context.Context, c evpndv1.EvpndServiceClient, req *evpndv1.ListMACsRequest) ([]*evpndv1.MAC, error) {
	st, err := c.ListMACs(ctx, req)
	if err != nil {
		return nil, err
	}
	return recvAll(st, (*evpndv1.ListMACsResponse).GetMacs)
}

func listRoutes(ctx context.Context, c evpndv1.EvpndServiceClient, req *evpndv1.ListRoutesRequest) ([]*evpndv1.Route, error) {
	st, err := c.ListRoutes(ctx, req)
	if err != nil {
		return nil, err
	}
	return recvAll(st, (*evpndv1.ListRoutesResponse).GetRoutes)
}

// TestAPI exercises every read call of the API against a running fabric
// and compares the answers with the topology and the kernel.
func TestAPI(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	ctx := t.Context()
	c := f.client("leaf3")

	t.Run("status", func(t *testing.T) {
		eventually(t, convergeTimeout, "leaf3 in sync", func() error {
			st, err := c.GetStatus(ctx, &evpndv1.GetStatusRequest{})
			if err != nil {
				return err
			}
			if st.GetRouterId() != "10.0.0.3" || st.GetAsn() != 65000 || st.GetRole() != evpndv1.Role_ROLE_LEAF ||
				st.GetVtepIp() != "10.0.0.3" || st.GetL2VniCount() != 2 || st.GetPeersEstablished() != 1 {
				return fmt.Errorf("unexpected status %v", st)
			}
			if !st.GetKernelInSync() || !st.GetBgpSynced() {
				return fmt.Errorf("not in sync yet: %v", st)
			}
			return nil
		})
	})

	t.Run("vnis", func(t *testing.T) {
		res, err := c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetVnis()) != 2 {
			t.Fatalf("want VNIs 100 and 200, got %v", res)
		}
		v := res.GetVnis()[0]
		if v.GetVni() != 100 || v.GetVxlanDevice() != "vxlan100" || v.GetBridge() != "br100" || v.GetRd() != "10.0.0.3:100" || v.GetLocalVtep() != "10.0.0.3" ||
			!v.GetImportRtsAuto() || !slices.Equal(v.GetExportRts(), []string{"65000:100"}) || !v.GetDevicesPresent() {
			t.Errorf("vni 100: %v", v)
		}
		// VNI 100 is on every leaf: leaf3 floods to leaf1 and leaf2.
		if !slices.Equal(v.GetFloodVteps(), []string{"10.0.0.1", "10.0.0.2"}) {
			t.Errorf("vni 100 flood list: %v", v.GetFloodVteps())
		}
		// h5 is local; h1, h2 and hm are remote.
		if v.GetLocalMacs() != 1 || v.GetRemoteMacs() != 3 {
			t.Errorf("vni 100 MAC counts: local %d remote %d", v.GetLocalMacs(), v.GetRemoteMacs())
		}
		one, err := c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: 200})
		if err != nil || one.GetVni().GetVni() != 200 || !slices.Equal(one.GetVni().GetFloodVteps(), []string{"10.0.0.1"}) {
			t.Errorf("GetVNI 200: %v, %v", one, err)
		}
		_, err = c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: 300})
		if status.Code(err) != codes.NotFound {
			t.Errorf("GetVNI 300: want NotFound, got %v", err)
		}
	})

	t.Run("macs", func(t *testing.T) {
		macs, err := listMACs(ctx, c, &evpndv1.ListMACsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		// Every host MAC the model places, where it places it.
		want := map[string]string{} // "vni mac" -> vtep or "local port"
		for _, h := range f.m.Hosts {
			at, ok := f.at[h.Name]
			if !ok {
				continue
			}
			if at.Leaf == "leaf3" {
				want[fmt.Sprintf("%d %s", h.VNI, h.MAC)] = "local " + at.Port
			} else {
				want[fmt.Sprintf("%d %s", h.VNI, h.MAC)] = f.m.leaf(at.Leaf).VTEP.String()
			}
		}
		got := map[string]string{}
		for i, m := range macs {
			if i > 0 {
				p := macs[i-1]
				if p.GetVni() > m.GetVni() || (p.GetVni() == m.GetVni() && p.GetMac() >= m.GetMac()) {
					t.Errorf("not sorted: %d/%s before %d/%s", p.GetVni(), p.GetMac(), m.GetVni(), m.GetMac())
				}
			}
			if !m.GetInKernel() {
				t.Errorf("%d %s: not in the kernel", m.GetVni(), m.GetMac())
			}
			k := fmt.Sprintf("%d %s", m.GetVni(), m.GetMac())
			if m.GetSource() == evpndv1.MACSource_MAC_SOURCE_LOCAL {
				got[k] = "local " + m.GetPort()
				if m.GetVtep() != "10.0.0.3" {
					t.Errorf("%s: local MAC with VTEP %s", k, m.GetVtep())
				}
			} else {
				got[k] = m.GetVtep()
			}
		}
		if d := mapDiff(got, want); d != "" {
			t.Errorf("MAC table of leaf3 differs from the topology:%s", d)
		}
		// Reading the kernel gives the same answer as fib's record of it.
		verified, err := listMACs(ctx, c, &evpndv1.ListMACsRequest{VerifyKernel: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(verified) != len(macs) {
			t.Errorf("verify_kernel: %d rows, without: %d", len(verified), len(macs))
		}
		for i, m := range verified {
			if i >= len(macs) {
				break
			}
			if !m.GetInKernel() || m.GetPort() != macs[i].GetPort() {
				t.Errorf("verify_kernel row %v, without: %v", m, macs[i])
			}
		}
		remote, err := listMACs(ctx, c, &evpndv1.ListMACsRequest{Vni: 200, Source: evpndv1.MACSource_MAC_SOURCE_REMOTE})
		if err != nil {
			t.Fatal(err)
		}
		if len(remote) != 1 || remote[0].GetMac() != f.m.host("h4").MAC || remote[0].GetVtep() != "10.0.0.1" {
			t.Errorf("remote MACs of VNI 200: %v", remote)
		}
	})

	t.Run("routes", func(t *testing.T) {
		all, err := listRoutes(ctx, c, &evpndv1.ListRoutesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		type3, err := listRoutes(ctx, c, &evpndv1.ListRoutesRequest{RouteType: 3})
		if err != nil {
			t.Fatal(err)
		}
		// Type-3: leaf1 (100, 200), leaf2 (100), leaf3's own (100, 200).
		if len(type3) != 5 {
			t.Errorf("want 5 type-3 paths, got %d", len(type3))
		}
		var h1 *evpndv1.Route
		for _, r := range all {
			if r.GetRouteType() == 2 && r.GetMac() == f.m.host("h1").MAC {
				h1 = r
			}
		}
		if h1 == nil {
			t.Fatalf("no type-2 path for h1 among %d", len(all))
		}
		if h1.GetRd() != "10.0.0.1:100" || h1.GetNextHop() != "10.0.0.1" || h1.GetPeer() != "10.0.0.254" ||
			!h1.GetBest() || !h1.GetSelected() || h1.GetVni() != 100 || h1.GetLocal() ||
			!slices.Contains(h1.GetRouteTargets(), "65000:100") || !slices.Contains(h1.GetExtendedCommunities(), "ET:8") ||
			!strings.HasPrefix(h1.GetPrefix(), "[2]:[0]:[48]:["+h1.GetMac()+"]") {
			t.Errorf("h1's route: %v", h1)
		}
		byRD, err := listRoutes(ctx, c, &evpndv1.ListRoutesRequest{Rd: "10.0.0.1:200"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range byRD {
			if r.GetRd() != "10.0.0.1:200" || r.GetVni() != 200 {
				t.Errorf("rd filter let through %v", r)
			}
		}
		if len(byRD) != 2 { // h4's type-2 and leaf1's type-3
			t.Errorf("rd 10.0.0.1:200: want 2 paths, got %d", len(byRD))
		}
		_, err = listRoutes(ctx, c, &evpndv1.ListRoutesRequest{RouteType: 4})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "route_type") {
			t.Errorf("route type 4: %v", err)
		}
	})

	t.Run("peers", func(t *testing.T) {
		res, err := c.ListPeers(ctx, &evpndv1.ListPeersRequest{WithAdvertised: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetPeers()) != 1 {
			t.Fatalf("peers: %v", res)
		}
		p := res.GetPeers()[0]
		if p.GetAddress() != "10.0.0.254" || p.GetState() != evpndv1.PeerState_PEER_STATE_ESTABLISHED ||
			p.GetAccepted() == 0 || p.GetUptime().AsDuration() <= 0 || !p.GetEorReceived() {
			t.Errorf("peer: %v", p)
		}
		// At least an OPEN, a KEEPALIVE and an UPDATE each way; leaf3
		// advertises at least its two type-3 routes (VNIs 100 and 200).
		if p.GetMessagesReceived() < 3 || p.GetMessagesSent() < 3 || p.GetAdvertised() < 2 {
			t.Errorf("peer counters: %d messages received, %d sent, %d paths advertised; want at least 3, 3 and 2",
				p.GetMessagesReceived(), p.GetMessagesSent(), p.GetAdvertised())
		}
	})

	t.Run("clear duplicate", func(t *testing.T) {
		res, err := c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 100})
		if err != nil || res.GetCleared() != 0 {
			t.Errorf("ClearDuplicate vni 100 (no duplicates): %v %v", res, err)
		}
		_, err = c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 300})
		if status.Code(err) != codes.NotFound {
			t.Errorf("ClearDuplicate vni 300: want NotFound, got %v", err)
		}
		_, err = c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 100, Mac: "zz"})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "mac") {
			t.Errorf("ClearDuplicate bad mac: %v", err)
		}
	})

	t.Run("route reflector", func(t *testing.T) {
		rr := f.client("spine1")
		st, err := rr.GetStatus(ctx, &evpndv1.GetStatusRequest{})
		if err != nil || st.GetRole() != evpndv1.Role_ROLE_ROUTE_REFLECTOR || st.GetPeersEstablished() != 3 {
			t.Errorf("spine1 status: %v %v", st, err)
		}
		peers, err := rr.ListPeers(ctx, &evpndv1.ListPeersRequest{})
		if err != nil || len(peers.GetPeers()) != 3 {
			t.Fatalf("spine1 peers: %v %v", peers, err)
		}
		for _, p := range peers.GetPeers() {
			if !p.GetDynamic() || !p.GetRouteReflectorClient() || p.GetState() != evpndv1.PeerState_PEER_STATE_ESTABLISHED {
				t.Errorf("spine1 peer %v", p)
			}
		}
		// The reflector holds every leaf's routes; it installs nothing.
		routes, err := listRoutes(ctx, rr, &evpndv1.ListRoutesRequest{RouteType: 3})
		if err != nil || len(routes) != 5 { // leaf1 100+200, leaf2 100, leaf3 100+200
			t.Errorf("spine1 type-3 paths: %d %v", len(routes), err)
		}
		if _, err := rr.Check(ctx, &evpndv1.CheckRequest{}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("Check on a route reflector: want FailedPrecondition, got %v", err)
		}
	})

	t.Run("gobgp api", func(t *testing.T) {
		// spine1 sets api.gobgp-listen: GoBGP's own API answers on its
		// loopback. GetBgp is called by name (evpnd's code outside speaker/
		// does not import GoBGP) and its reply read field by field:
		// GetBgpResponse{global: Global{asn: 1, router_id: 2}}.
		var conn net.Conn
		if err := f.lab.Node("spine1").Do(func() (err error) {
			conn, err = net.DialTimeout("tcp", "127.0.0.1:50052", 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		cc, err := grpc.NewClient("passthrough:///gobgp", grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return conn, nil }))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		var resp emptypb.Empty
		if err := cc.Invoke(ctx, "/api.GoBgpService/GetBgp", &emptypb.Empty{}, &resp); err != nil {
			t.Fatalf("GoBGP API GetBgp: %v", err)
		}
		global := protoField(resp.ProtoReflect().GetUnknown(), 1)
		asn, rid := protoField(global, 1), protoField(global, 2)
		if len(asn) == 0 || string(rid) != "10.0.0.254" {
			t.Errorf("GoBGP's GetBgp: router_id %q (want 10.0.0.254), asn field %v", rid, asn)
		} else if v, _ := protowire.ConsumeVarint(asn); v != 65000 {
			t.Errorf("GoBGP's GetBgp: asn %d, want 65000", v)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		body := f.metrics("leaf3")
		for _, want := range []string{
			`evpnd_bgp_peer_up{peer="10.0.0.254"} 1`,
			`evpnd_macs{source="local",vni="100"} 1`,
			`evpnd_macs{source="remote",vni="100"} 3`,
			`evpnd_flood_vteps{vni="100"} 2`,
			`evpnd_kernel_in_sync 1`,
			// Imported: h1, h2, hm (VNI 100) and h4 (VNI 200); type-3
			// from leaf1 (100, 200) and leaf2 (100).
			`evpnd_evpn_routes{type="2"} 4`,
			`evpnd_evpn_routes{type="3"} 3`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		if strings.Contains(body, "evpnd_fib_reconcile_duration_seconds_count 0\n") ||
			!strings.Contains(body, "evpnd_fib_reconcile_duration_seconds_count") {
			t.Error("no reconcile pass counted")
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", body)
		}
	})

	t.Run("socket", func(t *testing.T) {
		var path string
		for _, n := range f.lab.Topology().Nodes {
			if n.Name == "leaf3" {
				path = n.HostPath(apiSocket)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s: mode %v: want a socket no other user can use", path, fi.Mode())
		}
	})

	t.Run("cli", func(t *testing.T) {
		out := f.exec("leaf3", "evpnctl", "show", "evpn", "mac", "vni", "100")
		for _, h := range []string{"h1", "h2", "h5"} {
			if !strings.Contains(out, f.m.host(h).MAC) {
				t.Errorf("evpnctl show evpn mac vni 100 lacks %s (%s):\n%s", h, f.m.host(h).MAC, out)
			}
		}
		out = f.exec("leaf3", "evpnctl", "show", "bgp", "summary")
		if !strings.Contains(out, "10.0.0.254") {
			t.Errorf("show bgp summary:\n%s", out)
		}
		out = f.exec("leaf3", "evpnctl", "check")
		t.Logf("evpnctl check:\n%s", out)
	})
}

// mapDiff lists the differences of two string maps, one per line.
func mapDiff(got, want map[string]string) string {
	var b strings.Builder
	for k, w := range want {
		if g, ok := got[k]; !ok {
			fmt.Fprintf(&b, "\n  missing %s (want %s)", k, w)
		} else if g != w {
			fmt.Fprintf(&b, "\n  %s: got %s, want %s", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "\n  extra %s (%s)", k, g)
		}
	}
	return b.String()
}

// protoField returns the raw value of field num in a protobuf message's
// bytes: a length-delimited field's contents, or a varint's bytes.
func protoField(b []byte, num protowire.Number) []byte {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(n, typ, b)
		if vl < 0 {
			return nil
		}
		if n == num {
			if typ == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(b)
				return v
			}
			return b[:vl]
		}
		b = b[vl:]
	}
	return nil
}
