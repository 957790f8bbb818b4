package evpn

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// l3Kernel replays L3 effects the way fib would hold them.
type l3Kernel struct {
	neighs map[hostKey]MAC
	hosts  map[hostKey]NextHop
	prefs  map[prefixKey][]NextHop
	adv    map[Key]*Route
}

func newL3Kernel() *l3Kernel {
	return &l3Kernel{neighs: map[hostKey]MAC{}, hosts: map[hostKey]NextHop{}, prefs: map[prefixKey][]NextHop{}, adv: map[Key]*Route{}}
}

func (k *l3Kernel) apply(t *testing.T, eff []L3Effect) {
	t.Helper()
	for _, e := range eff {
		switch e.Kind {
		case L3SetNeigh:
			k.neighs[hostKey{e.Neigh.L2VNI, e.Neigh.IP}] = e.Neigh.MAC
		case L3DelNeigh, L3ProbeNeigh:
			hk := hostKey{e.Neigh.L2VNI, e.Neigh.IP}
			if _, ok := k.neighs[hk]; !ok {
				t.Fatalf("%s of a neighbour never set", fmtL3(e))
			}
			delete(k.neighs, hk)
		case L3SetHost:
			k.hosts[hostKey{e.Host.L3VNI, e.Host.IP}] = e.Host.NextHop
		case L3DelHost:
			hk := hostKey{e.Host.L3VNI, e.Host.IP}
			if _, ok := k.hosts[hk]; !ok {
				t.Fatalf("%s of a host route never set", fmtL3(e))
			}
			delete(k.hosts, hk)
		case L3SetPrefix:
			if len(e.Prefix.NextHops) == 0 {
				t.Fatalf("%s without next hops", fmtL3(e))
			}
			k.prefs[prefixKey{e.Prefix.L3VNI, e.Prefix.Prefix}] = e.Prefix.NextHops
		case L3DelPrefix:
			pk := prefixKey{e.Prefix.L3VNI, e.Prefix.Prefix}
			if _, ok := k.prefs[pk]; !ok {
				t.Fatalf("%s of a prefix never set", fmtL3(e))
			}
			delete(k.prefs, pk)
		case L3Advertise:
			k.adv[e.Route.Key] = e.Route
		case L3Withdraw:
			if _, ok := k.adv[e.Route.Key]; !ok {
				t.Fatalf("%s of a route never advertised", fmtL3(e))
			}
			delete(k.adv, e.Route.Key)
		}
	}
}

func (k *l3Kernel) snapshot(tab *L3Table) L3Snapshot {
	var s L3Snapshot
	for hk, m := range k.neighs {
		s.Neighs = append(s.Neighs, Neigh{L2VNI: hk.vni, IP: hk.ip, MAC: m})
	}
	for hk, nh := range k.hosts {
		s.Hosts = append(s.Hosts, HostRoute{VRF: tab.vrfName(hk.vni), L3VNI: hk.vni, IP: hk.ip, NextHop: nh})
	}
	for pk, nhs := range k.prefs {
		s.Prefixes = append(s.Prefixes, PrefixRoute{VRF: tab.vrfName(pk.l3vni), L3VNI: pk.l3vni, Prefix: pk.prefix, NextHops: nhs})
	}
	s.RouterMACs = tab.Snapshot().RouterMACs
	return sortSnapshot(s)
}

func sortSnapshot(s L3Snapshot) L3Snapshot {
	slices.SortFunc(s.Neighs, func(a, b Neigh) int { return a.IP.Compare(b.IP) })
	slices.SortFunc(s.Hosts, func(a, b HostRoute) int { return a.IP.Compare(b.IP) })
	slices.SortFunc(s.Prefixes, func(a, b PrefixRoute) int { return comparePrefix(a.Prefix, b.Prefix) })
	return s
}

func sameSnapshot(a, b L3Snapshot) bool {
	return slices.Equal(a.Neighs, b.Neighs) && slices.Equal(a.Hosts, b.Hosts) &&
		slices.EqualFunc(a.Prefixes, b.Prefixes, func(x, y PrefixRoute) bool {
			return x.VRF == y.VRF && x.L3VNI == y.L3VNI && x.Prefix == y.Prefix && slices.Equal(x.NextHops, y.NextHops)
		}) && slices.Equal(a.RouterMACs, b.RouterMACs)
}

// TestL3RandomOrders drives the table with random remote updates,
// withdrawals and local hosts, and checks after every step that
//   - the effects, replayed as fib would hold them, equal Snapshot (no
//     lost or doubled add or delete);
//   - a fresh table fed the same routes and local hosts in another order
//     reaches the same Snapshot (selection does not depend on arrival);
//   - a local host that wins its IP is advertised and has no remote
//     neighbour or host route, one that loses is not advertised;
//
// and that withdrawing everything leaves nothing behind.
func TestL3RandomOrders(t *testing.T) {
	vteps := []netip.Addr{vtep2, vtep3, netip.MustParseAddr("10.0.0.4")}
	rmacOf := map[netip.Addr]MAC{vtep2: rmac2, vtep3: rmac3, vteps[2]: {0x02, 0xaa, 0, 0, 0, 4}}
	ips := []netip.Addr{hostA, host6, netip.MustParseAddr("192.168.100.11")}
	macs := []MAC{mac1, mac2}
	prefixes := []string{"0.0.0.0/0", "172.16.0.0/16", "2001:db8:9::/48"}
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		tab := NewL3Table(l3opts())
		kern := newL3Kernel()
		live := map[Key]*Route{}
		local := map[netip.Addr]localHost{}
		for step := 0; step < 200; step++ {
			var eff []L3Effect
			switch op := rng.IntN(12); {
			case op < 4:
				v := vteps[rng.IntN(len(vteps))]
				r := macIP(v, macs[rng.IntN(len(macs))], ips[rng.IntN(len(ips))], uint32(rng.IntN(4)), rmacOf[v])
				r.RD.Number = uint32(1 + rng.IntN(2)) // the same host under two RDs
				r.Sticky = rng.IntN(20) == 0
				live[r.Key] = r
				eff = tab.Update(r)
			case op < 6:
				v := vteps[rng.IntN(len(vteps))]
				r := type5(v, uint16(1+rng.IntN(2)), prefixes[rng.IntN(len(prefixes))], rmacOf[v])
				live[r.Key] = r
				eff = tab.Update(r)
			case op < 8:
				for k := range live { // any one
					delete(live, k)
					eff = tab.Withdraw(k)
					break
				}
			case op < 9 && rng.IntN(3) == 0:
				ip := ips[rng.IntN(len(ips))]
				l := localHost{mac: macs[rng.IntN(len(macs))], away: true}
				if old, ok := local[ip]; ok && old.mac == l.mac {
					l.seq = old.seq
				}
				local[ip] = l
				eff = tab.LocalHostAway(100, l.mac, ip)
			case op < 9:
				ip := ips[rng.IntN(len(ips))]
				l := localHost{mac: macs[rng.IntN(len(macs))], seq: uint32(rng.IntN(4))}
				if old, ok := local[ip]; ok && old.mac == l.mac {
					l.away = old.away
				}
				local[ip] = l
				eff = tab.LocalHost(100, l.mac, ip, l.seq, false)
			case op < 10:
				ip := ips[rng.IntN(len(ips))]
				delete(local, ip)
				eff = tab.LocalHostGone(100, ip)
			case op < 11:
				mac := macs[rng.IntN(len(macs))]
				for ip, l := range local {
					if l.mac == mac {
						l.away = true
						local[ip] = l
					}
				}
				eff = tab.LocalMACAway(100, mac)
			default:
				mac, seq := macs[rng.IntN(len(macs))], uint32(rng.IntN(5))
				// Remote bindings of the MAC that the local bid outbids
				// are inherited (LocalMACSeq).
				lc := candidate{vtep: vtep1, seq: seq}
				for hk, st := range tab.neighs {
					if _, ok := local[hk.ip]; ok || !st.installed || st.inst.mac != mac {
						continue
					}
					if win, found := bestL3(st.remote); !found || !better(win.candidate(), lc) {
						local[hk.ip] = localHost{mac: mac, seq: seq}
					}
				}
				for ip, l := range local {
					if l.mac == mac {
						l.seq, l.away = seq, false
						local[ip] = l
					}
				}
				eff = tab.LocalMACSeq(100, mac, seq, false)
			}
			kern.apply(t, eff)
			// The MAC index is the installed neighbours.
			n := 0
			for mk, ips := range tab.byMAC {
				for ip := range ips {
					n++
					if st := tab.neighs[hostKey{mk.VNI, ip}]; st == nil || !st.installed || st.inst.mac != mk.MAC {
						t.Fatalf("seed %d step %d: byMAC has %v %s, not installed so", seed, step, mk, ip)
					}
				}
			}
			if n != len(kern.neighs) {
				t.Fatalf("seed %d step %d: byMAC holds %d neighbours, %d installed", seed, step, n, len(kern.neighs))
			}
			got := tab.Snapshot()
			if k := kern.snapshot(tab); !sameSnapshot(sortSnapshot(got), k) {
				t.Fatalf("seed %d step %d: effects replayed\n %+v\nSnapshot\n %+v", seed, step, k, got)
			}
			// Another order, from scratch.
			fresh := NewL3Table(l3opts())
			keys := make([]Key, 0, len(live))
			for k := range live {
				keys = append(keys, k)
			}
			rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			for _, k := range keys {
				fresh.Update(live[k])
			}
			for ip, l := range local {
				fresh.LocalHost(100, l.mac, ip, l.seq, false)
			}
			for ip, l := range local {
				if l.away {
					fresh.local[hostKey{100, ip}] = localHost{mac: l.mac, seq: l.seq, away: true}
					fresh.flush([]touch{touchNeigh(hostKey{100, ip}), touchHost(hostKey{4001, ip})})
				}
			}
			if f := fresh.Snapshot(); !sameSnapshot(f, got) {
				t.Fatalf("seed %d step %d: another arrival order gives\n %+v\nnot\n %+v", seed, step, f, got)
			}
			for ip, l := range local {
				r, adv := kern.adv[Key{Type: RouteTypeMACIP, RD: RDFromIP(vtep1, 2), MAC: l.mac, IP: ip}]
				_, nb := kern.neighs[hostKey{100, ip}]
				_, hr := kern.hosts[hostKey{4001, ip}]
				if adv && (nb || hr || r.Seq != l.seq || l.away) {
					t.Fatalf("seed %d step %d: local %s advertised (seq %d) with remote neighbour %v / host route %v", seed, step, ip, r.Seq, nb, hr)
				}
				if !adv && !nb && !l.away {
					t.Fatalf("seed %d step %d: local %s neither advertised nor reached through a remote neighbour", seed, step, ip)
				}
			}
			if len(kern.adv) > len(local) {
				t.Fatalf("seed %d step %d: %d routes advertised for %d local hosts", seed, step, len(kern.adv), len(local))
			}
		}
		for k := range live {
			kern.apply(t, tab.Withdraw(k))
		}
		for ip := range local {
			kern.apply(t, tab.LocalHostGone(100, ip))
		}
		if len(kern.neighs)+len(kern.hosts)+len(kern.prefs)+len(kern.adv) != 0 ||
			len(tab.neighs)+len(tab.hosts)+len(tab.prefs)+len(tab.rmacs)+len(tab.routes)+len(tab.local) != 0 {
			t.Fatalf("seed %d: left after withdrawing everything: kernel %d/%d/%d/%d, table %d/%d/%d/%d/%d/%d", seed,
				len(kern.neighs), len(kern.hosts), len(kern.prefs), len(kern.adv),
				len(tab.neighs), len(tab.hosts), len(tab.prefs), len(tab.rmacs), len(tab.routes), len(tab.local))
		}
	}
}
