package e2e

import (
	"sync"
	"testing"
)

// TestSameVNIPing: every host reaches every other host of its VNI behind
// another leaf, in both VNIs, and the leafs then hold exactly the FDB the
// topology implies.
func TestSameVNIPing(t *testing.T) {
	f := deployFabric(t)
	f.waitFlood()
	type pair struct{ a, b *host }
	var pairs []pair
	for _, a := range f.m.Hosts {
		for _, b := range f.m.Hosts {
			if a != b && a.VNI == b.VNI && f.at[a.Name].Leaf != f.at[b.Name].Leaf {
				pairs = append(pairs, pair{a, b})
			}
		}
	}
	if len(pairs) < 8 {
		t.Fatalf("only %d host pairs across leafs: the topology lost hosts", len(pairs))
	}
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The first ping may still race the type-3 routes of the
			// other leafs on a slow machine; after that every packet
			// counts.
			if errs[i] = f.pingUntil(t.Context(), p.a.Name, p.b.IP.String(), changeTimeout); errs[i] == nil {
				errs[i] = f.ping(t.Context(), p.a.Name, p.b.IP.String(), 3)
			}
		}()
	}
	wg.Wait()
	for i, p := range pairs {
		if errs[i] != nil {
			t.Errorf("VNI %d, %s (%s) -> %s (%s): %v", p.a.VNI, p.a.Name, f.at[p.a.Name].Leaf, p.b.Name, f.at[p.b.Name].Leaf, errs[i])
		}
	}
	t.Logf("%d host pairs across leafs answered", len(pairs))
	f.waitFDB(changeTimeout)
}

// TestVNIIsolation: a host in VNI 200 with an address in VNI 100's subnet
// is unreachable from the hosts of VNI 100, including one behind the same
// leaf, while a VNI 200 host with an address in that subnet reaches it
// across the fabric (so the address itself works).
func TestVNIIsolation(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	h1, h2, h3, h4, h5 := f.m.host("h1"), f.m.host("h2"), f.m.host("h3"), f.m.host("h4"), f.m.host("h5")
	if h1.VNI != 100 || h2.VNI != 100 || h5.VNI != 100 || h3.VNI != 200 || h4.VNI != 200 ||
		f.at["h1"].Leaf != f.at["h4"].Leaf || f.at["h3"].Leaf != f.at["h5"].Leaf || f.at["h3"].Leaf == f.at["h4"].Leaf {
		t.Fatalf("topology changed: the test needs h1, h2, h5 in VNI 100, h3, h4 in VNI 200, h1 and h4 on one leaf, h3 and h5 on another")
	}
	// h4 (VNI 200, leaf1) and h3 (VNI 200, leaf3) join VNI 100's subnet.
	const onH4, onH3 = "192.168.100.99", "192.168.100.98"
	f.exec("h4", "ip", "addr", "add", onH4+"/24", "dev", "eth1")
	f.exec("h3", "ip", "addr", "add", onH3+"/24", "dev", "eth1")

	// Positive controls: VNI 100 works, and the new address is reachable
	// inside VNI 200 across the fabric.
	if err := f.ping(t.Context(), "h2", h1.IP.String(), 2); err != nil {
		t.Fatalf("control h2 -> h1 in VNI 100: %v", err)
	}
	f.waitPing("h3", onH4)
	if err := f.ping(t.Context(), "h3", onH4, 2); err != nil {
		t.Fatalf("control h3 -> h4's %s in VNI 200: %v", onH4, err)
	}

	// VNI 100 hosts must not reach them, whichever leaf they are on.
	cases := []struct{ from, to, why string }{
		{"h2", onH4, "VNI 100 on leaf2 -> VNI 200 host on leaf1"},
		{"h1", onH4, "VNI 100 on leaf1 -> VNI 200 host on the same leaf"},
		{"h5", onH3, "VNI 100 on leaf3 -> VNI 200 host on the same leaf"},
		{"h1", onH3, "VNI 100 on leaf1 -> VNI 200 host on leaf3"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.ping(t.Context(), c.from, c.to, 3)
		}()
	}
	wg.Wait()
	for i, c := range cases {
		if errs[i] == nil {
			t.Errorf("%s -> %s (%s): answered, want no reply across VNIs", c.from, c.to, c.why)
		}
	}
	// Nothing leaked into the other VNI's tables either.
	f.waitFDB(changeTimeout)
	t.Logf("%d cross-VNI pings unanswered as they must be", len(cases))
}
