package vtep

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// A Node reads the namespace it was opened in, by name or through a
// handle: its links (kind, alias, admin state), one link's addresses,
// every address; an absent link is ErrNoLink; SetDown puts a link down.
func TestNode(t *testing.T) {
	ns, h := testNS(t, "node")
	sh(t, ns, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	sh(t, ns, "ip", "link", "set", "acc0", "alias", "mine", "up")
	sh(t, ns, "ip", "addr", "add", "10.9.0.1/31", "dev", "acc0")
	sh(t, ns, "ip", "addr", "add", "2001:db8:9::1/64", "dev", "acc0", "nodad")
	sh(t, ns, "ip", "link", "add", "br9", "type", "bridge")

	byName, err := OpenNode(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(byName.Close)
	for what, n := range map[string]*Node{"by name": byName, "by handle": NodeOf(h)} {
		names, err := n.LinkNames()
		if err != nil {
			t.Fatal(err)
		}
		if !names["acc0"] || !names["host0"] || !names["br9"] || !names["lo"] || len(names) != 4 {
			t.Errorf("%s: links %v, want lo, acc0, host0, br9 (the test namespace's)", what, names)
		}
		l, err := n.Link("acc0")
		if err != nil || l.Kind != "veth" || l.Alias != "mine" || !l.Up || l.Index == 0 {
			t.Errorf("%s: acc0 %+v %v, want an up veth aliased mine", what, l, err)
		}
		if l, err := n.Link("br9"); err != nil || l.Kind != "bridge" || l.Up {
			t.Errorf("%s: br9 %+v %v, want a down bridge", what, l, err)
		}
		if _, err := n.Link("nope"); !errors.Is(err, ErrNoLink) {
			t.Errorf("%s: absent link: %v, want ErrNoLink", what, err)
		}
		if _, err := n.Addrs("nope"); !errors.Is(err, ErrNoLink) {
			t.Errorf("%s: addresses of an absent link: %v, want ErrNoLink", what, err)
		}
		as, err := n.Addrs("acc0")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"10.9.0.1/31", "2001:db8:9::1/64"} {
			if !slices.Contains(as, netip.MustParsePrefix(want)) {
				t.Errorf("%s: acc0 addresses %v lack %s", what, as, want)
			}
		}
		all, err := n.AllAddrs()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(all, netip.MustParsePrefix("10.9.0.1/31")) || slices.ContainsFunc(all, func(p netip.Prefix) bool { return !p.Addr().Is4() && p.Addr().Is4In6() }) {
			t.Errorf("%s: all addresses %v, want 10.9.0.1/31 as IPv4", what, all)
		}
	}
	if err := byName.SetDown("acc0"); err != nil {
		t.Fatal(err)
	}
	if l, err := byName.Link("acc0"); err != nil || l.Up {
		t.Errorf("acc0 after SetDown: %+v %v, want down", l, err)
	}
	if err := byName.SetDown("acc0"); err != nil {
		t.Errorf("SetDown of a down link: %v", err)
	}
	if err := byName.SetDown("nope"); !errors.Is(err, ErrNoLink) {
		t.Errorf("SetDown of an absent link: %v, want ErrNoLink", err)
	}
	if _, err := OpenNode(ns.Name + "-absent"); err == nil {
		t.Error("OpenNode of an absent namespace: no error")
	}
}
