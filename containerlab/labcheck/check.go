package labcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ping sends count echo requests from host to addr and reports whether any
// reply came back.
func Ping(ctx context.Context, r Runner, host, addr string, count int) bool {
	_, err := r.Exec(ctx, host, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", addr)
	return err == nil
}

// Result is the outcome of Matrix.
type Result struct {
	Reached  [][2]Host // ordered pairs that reached each other
	Routed   [][2]Host // unordered pairs that reached each other routed, both ways
	Routed6  int       // how many of them over IPv6 too
	Isolated [][2]Host // unordered pairs kept apart at layer 2
	Failures []string  // what went wrong, one line each
	Took     time.Duration
}

// Matrix checks every host pair. Pairs in the same VNI must answer a ping;
// each is retried until timeout, the time the fabric gets to converge.
// Pairs in different VNIs are in different subnets, so a ping between them
// fails on any fabric; to test the fabric, Matrix adds on-link /32 routes
// to each other on both hosts for the check, so that the ping's ARP goes
// out on eth1 and would be answered if the VNIs leaked into each other, and
// removes them afterwards. Before that, the pairs of Routed must reach
// each other both ways through their gateways, over IPv6 too where both
// have it (Routed6), retried until timeout like the others.
func (p *Plan) Matrix(ctx context.Context, r Runner, timeout time.Duration) (*Result, error) {
	start := time.Now()
	res := &Result{}
	reach, isolated := p.Pairs()
	deadline := start.Add(timeout)
	for _, pr := range reach {
		for {
			if Ping(ctx, r, pr[0].Name, pr[1].Addr().String(), 1) {
				res.Reached = append(res.Reached, pr)
				break
			}
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if time.Now().After(deadline) {
				res.Failures = append(res.Failures, fmt.Sprintf("%s (VNI %d) cannot reach %s %s within %v", pr[0].Name, pr[0].VNI, pr[1].Name, pr[1].Addr(), timeout))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	// Routed pairs first, all at once: a host that no leaf knows by its
	// address yet (a silent host) is found when it sends, here when it
	// pings the other way. The isolated pairs' on-link routes, added
	// next, would bypass the gateways.
	for _, pr := range p.Routed() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failures, v6 := routedPair(ctx, r, pr[0], pr[1], deadline)
			mu.Lock()
			defer mu.Unlock()
			res.Failures = append(res.Failures, failures...)
			if len(failures) == 0 {
				res.Routed = append(res.Routed, pr)
				if v6 {
					res.Routed6++
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	for _, pr := range isolated {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leaked, err := isolatedPair(ctx, r, pr[0], pr[1])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case leaked:
				res.Failures = append(res.Failures, fmt.Sprintf("%s (VNI %d) reaches %s %s (VNI %d) at layer 2", pr[0].Name, pr[0].VNI, pr[1].Name, pr[1].Addr(), pr[1].VNI))
			default:
				res.Isolated = append(res.Isolated, pr)
			}
		}()
	}
	wg.Wait()
	res.Took = time.Since(start)
	return res, errors.Join(errs...)
}

// routedPair pings b from a and a from b through their gateways, over
// IPv6 too where Routed6, until every direction answered or the deadline.
// It returns what did not answer, and whether IPv6 was checked.
func routedPair(ctx context.Context, r Runner, a, b Host, deadline time.Time) (failures []string, v6 bool) {
	type probe struct {
		from, to Host
		addr     netip.Addr
	}
	todo := []probe{{a, b, b.Addr()}, {b, a, a.Addr()}}
	if v6 = Routed6(a, b); v6 {
		todo = append(todo, probe{a, b, b.Prefix6.Addr()}, probe{b, a, a.Prefix6.Addr()})
	}
	for len(todo) > 0 {
		todo = slices.DeleteFunc(todo, func(pr probe) bool { return Ping(ctx, r, pr.from.Name, pr.addr.String(), 1) })
		if len(todo) == 0 || ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, pr := range todo {
		failures = append(failures, fmt.Sprintf("%s (VNI %d) cannot reach %s %s (VNI %d) routed within the deadline", pr.from.Name, pr.from.VNI, pr.to.Name, pr.addr, pr.to.VNI))
	}
	return failures, v6
}

// isolatedPair pings b from a with on-link routes between them.
func isolatedPair(ctx context.Context, r Runner, a, b Host) (leaked bool, err error) {
	route := func(op string, on, to Host) error {
		_, err := r.Exec(ctx, on.Name, "ip", "route", op, to.Addr().String()+"/32", "dev", "eth1")
		return err
	}
	if err := route("add", a, b); err != nil {
		return false, err
	}
	defer func() { err = errors.Join(err, route("del", a, b)) }()
	if err := route("add", b, a); err != nil {
		return false, err
	}
	defer func() { err = errors.Join(err, route("del", b, a)) }()
	return Ping(ctx, r, a.Name, b.Addr().String(), 2), nil
}

// MACRow is one row of "evpnctl show evpn mac".
type MACRow struct {
	VNI   uint32
	MAC   string
	Type  string // local or remote
	Where string // the port of a local MAC, the VTEP of a remote one
}

func (m MACRow) String() string {
	return fmt.Sprintf("VNI %d %s %s %s", m.VNI, m.MAC, m.Type, m.Where)
}

// ParseMACTable reads the rows of evpnctl's MAC table (the lines that start
// with a VNI and a MAC).
func ParseMACTable(out string) []MACRow {
	var rows []MACRow
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		vni, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			continue
		}
		mac, err := net.ParseMAC(f[1])
		if err != nil {
			continue
		}
		rows = append(rows, MACRow{VNI: uint32(vni), MAC: mac.String(), Type: f[2], Where: f[3]})
	}
	return rows
}

// TemporaryMAC reports whether mac is one of containerlab's generated
// interface MACs (OUI aa:c1:ab), which a host must never send from.
func TemporaryMAC(mac string) bool { return strings.HasPrefix(strings.ToLower(mac), "aa:c1:ab:") }

// WantMACs returns the MAC table a leaf must show once every host has sent
// traffic: every host in the leaf's VNIs, local on its port or remote at
// its leaf's VTEP, sorted like the output of evpnctl.
func (p *Plan) WantMACs(leaf string) []MACRow {
	lf := p.Leaf(leaf)
	if lf == nil {
		return nil
	}
	var rows []MACRow
	for _, h := range p.Hosts {
		if !slices.Contains(lf.VNIs, h.VNI) {
			continue
		}
		row := MACRow{VNI: h.VNI, MAC: h.MAC.String(), Type: "local", Where: h.Port}
		if h.Leaf != leaf {
			row.Type, row.Where = "remote", p.Leaf(h.Leaf).VTEP.String()
		}
		rows = append(rows, row)
	}
	sortRows(rows)
	return rows
}

func sortRows(rows []MACRow) {
	slices.SortFunc(rows, func(a, b MACRow) int {
		if a.VNI != b.VNI {
			return int(a.VNI) - int(b.VNI)
		}
		return strings.Compare(a.MAC, b.MAC)
	})
}

// CheckMACs polls every leaf's "evpnctl show evpn mac" until it shows
// exactly WantMACs, and fails with the difference after timeout. Run it
// after Matrix, which makes every host send.
func (p *Plan) CheckMACs(ctx context.Context, r Runner, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var errs []error
	for _, lf := range p.Leafs {
		want := p.WantMACs(lf.Name)
		for {
			out, err := r.Exec(ctx, lf.Name, "evpnctl", "show", "evpn", "mac")
			got := ParseMACTable(out)
			sortRows(got)
			if err == nil && slices.Equal(got, want) {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = macDiff(got, want)
				}
				errs = append(errs, fmt.Errorf("%s: evpnctl show evpn mac: %w\n%s", lf.Name, err, out))
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

func macDiff(got, want []MACRow) error {
	var b strings.Builder
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "\n  unexpected: %s", g)
			if TemporaryMAC(g.MAC) {
				b.WriteString(" (containerlab's temporary MAC)")
			}
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "\n  missing:    %s", w)
		}
	}
	return fmt.Errorf("MAC table differs from the topology's hosts:%s", b.String())
}
