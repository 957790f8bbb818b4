package vtep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ErrNoLink is returned (wrapped) for a link that does not exist.
var ErrNoLink = errors.New("no such link")

// Node reads the links and addresses of one network namespace: the
// underlay's, or a tenant's on the netns backend. Every read of the
// node's links and addresses the daemon makes goes through one, so that
// it names the namespace it reads (a process-wide read, such as
// net.Interfaces, sees the caller's namespace only).
//
// A Node holds a netlink handle, which is not safe for concurrent use:
// one goroutine at a time, or one Node each. Dumps are retried while the
// kernel reports them interrupted.
type Node struct {
	h     *netlink.Handle
	owned bool
}

// NodeLink is what the daemon reads of a link.
type NodeLink struct {
	Name  string
	Index int
	Kind  string // netlink's link type: "bridge", "vxlan", "veth", ...
	Alias string
	Up    bool // administratively up
}

// OpenNode opens a Node in the namespace named ns (a name under
// /run/netns), or in the caller's namespace when ns is "". Close it.
func OpenNode(ns string) (*Node, error) {
	if ns == "" {
		return NodeAt(netns.None())
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer h.Close() // the handle's sockets keep the namespace
	return NodeAt(h)
}

// NodeAt opens a Node in the namespace of ns (netns.None(): the
// caller's). Close it.
func NodeAt(ns netns.NsHandle) (*Node, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Node{h: h, owned: true}, nil
}

// NodeOf reads through h, which the caller keeps (Close leaves it open).
func NodeOf(h *netlink.Handle) *Node { return &Node{h: h} }

// Handle is the node's netlink handle, for the writers that take one
// (Manager, fib): it stays the Node's.
func (n *Node) Handle() *netlink.Handle { return n.h }

// Close releases the handle, if the Node opened it.
func (n *Node) Close() {
	if n.owned {
		n.h.Close()
	}
}

func nodeLink(l netlink.Link) NodeLink {
	a := l.Attrs()
	return NodeLink{Name: a.Name, Index: a.Index, Kind: l.Type(), Alias: a.Alias, Up: a.Flags&net.FlagUp != 0}
}

// Links lists the namespace's links.
func (n *Node) Links() ([]NodeLink, error) {
	ls, err := retryDump(n.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]NodeLink, 0, len(ls))
	for _, l := range ls {
		out = append(out, nodeLink(l))
	}
	return out, nil
}

// LinkNames returns the names of the namespace's links.
func (n *Node) LinkNames() (map[string]bool, error) {
	ls, err := n.Links()
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ls))
	for _, l := range ls {
		out[l.Name] = true
	}
	return out, nil
}

// Link returns the link named name; an error wrapping ErrNoLink when there
// is none.
func (n *Node) Link(name string) (NodeLink, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		if _, ok := err.(netlink.LinkNotFoundError); ok {
			return NodeLink{}, fmt.Errorf("link %s: %w", name, ErrNoLink)
		}
		return NodeLink{}, fmt.Errorf("link %s: %w", name, err)
	}
	return nodeLink(l), nil
}

// Addrs returns the addresses of link name, with their prefix lengths.
func (n *Node) Addrs(name string) ([]netip.Prefix, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		if _, ok := err.(netlink.LinkNotFoundError); ok {
			return nil, fmt.Errorf("link %s: %w", name, ErrNoLink)
		}
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return n.addrs(l)
}

// AllAddrs returns every address of the namespace's links.
func (n *Node) AllAddrs() ([]netip.Prefix, error) { return n.addrs(nil) }

func (n *Node) addrs(l netlink.Link) ([]netip.Prefix, error) {
	as, err := retryDump(func() ([]netlink.Addr, error) { return n.h.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make([]netip.Prefix, 0, len(as))
	for _, a := range as {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		if ip4 := a.IP.To4(); ip4 != nil {
			ip = netip.AddrFrom4([4]byte(ip4))
		}
		bits, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip, bits))
	}
	return out, nil
}

// SetDown sets link name administratively down, if it is up.
// An error wraps ErrNoLink when there is no such link.
func (n *Node) SetDown(name string) error {
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	if !l.Up {
		return nil
	}
	return n.h.LinkSetDown(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.Index, Name: l.Name}})
}

// UnderlayMTU is UnderlayMTU read through the node.
func (n *Node) UnderlayMTU(local netip.Addr, towards []netip.Addr) (Underlay, error) {
	return UnderlayMTU(n.h, local, towards)
}

// LocalMACs reads the local MACs of vnis in the bridges of the namespace
// named ns ("" the caller's), as Learner.Dump does.
func LocalMACs(ctx context.Context, ns string, vnis []L2VNI) (map[MACKey]LocalMAC, error) {
	h := netns.None()
	if ns != "" {
		var err error
		if h, err = netns.GetFromName(ns); err != nil {
			return nil, fmt.Errorf("open namespace %s: %w", ns, err)
		}
		defer h.Close()
	}
	return NewLearner(h, vnis, nil).Dump(ctx)
}
