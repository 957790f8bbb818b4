package vtep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Manager creates, adopts and removes the devices of L2VNIs in one network
// namespace, through the netlink handle it is given. Its methods are safe
// for concurrent use; they run one at a time.
type Manager struct {
	h   *netlink.Handle
	ns  netns.NsHandle
	log *slog.Logger
	mu  sync.Mutex

	// sup is what Supervise keeps: the VNIs Ensure set up and Remove has
	// not removed. Its own lock, so that a long Ensure does not stall
	// the link event reader.
	sup supervised

	// linksRead counts the links observed, for tests of what a change
	// costs.
	linksRead atomic.Int64

	// fwdWarned is, per VRF, the forwarding sysctls last found off in
	// its namespace and warned about (under mu), so that EnsureVRF,
	// called on every supervision pass, warns once per change.
	fwdWarned map[string]string
}

// NewManager returns a Manager that works through h, a handle bound to the
// namespace ns (netns.None() for the caller's own). Besides h, the Manager
// opens a short-lived socket in ns to read the bridge-port flags of every
// port with one AF_BRIDGE dump: the handle offers only a dump per port,
// which costs seconds when a restarted evpnd adopts thousands of VNIs. The
// caller keeps ownership of h and ns and must keep them open while the
// Manager is in use.
func NewManager(h *netlink.Handle, ns netns.NsHandle, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{h: h, ns: ns, log: log}
}

// Ensure creates or adopts the devices of every VNI. It first observes the
// kernel and plans (PlanL2); any conflict aborts the call before anything
// is changed. If applying the plan fails, what this call created or
// changed is undone, and the error joins the failure and any undo
// failures. Calling it again with the same VNIs changes nothing.
func (m *Manager) Ensure(ctx context.Context, vnis []L2VNI) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ValidateSet(vnis); err != nil {
		return fmt.Errorf("ensure l2vni devices: %w", err)
	}
	obs, err := m.observeFor(vnis)
	if err != nil {
		return fmt.Errorf("ensure l2vni devices: %w", err)
	}
	plan, err := PlanL2(vnis, obs)
	if err != nil {
		return fmt.Errorf("ensure l2vni devices: nothing changed: %w", err)
	}
	if err := m.apply(ctx, plan, obs); err != nil {
		return fmt.Errorf("ensure l2vni devices: %w", err)
	}
	m.sup.add(vnis)
	for _, a := range plan.Absent {
		m.log.Warn("access interface does not exist (yet): evpnd enslaves it to its bridge when it appears",
			"vni", a.VNI, "port", a.Port, "bridge", a.Bridge)
	}
	m.log.Info("l2vni devices ensured", "vnis", len(vnis), "actions", len(plan.Actions), "adopted", len(plan.Adopted))
	if obs, err := m.observeAfter(vnis); err == nil {
		m.noteDevices(vnis, obs)
		m.warnMTUObserved(vnis, obs)
	}
	return nil
}

// DefaultBatch is the number of VNIs EnsureInBatches sets up at a time
// when not told: big enough to batch the netlink requests well, small
// enough that the hand-over of one batch is a short stop of the caller's
// event loop.
const DefaultBatch = 256

// EnsureInBatches is Ensure for VNIs added to a running leaf (a reload
// that adds 1,000 VNIs): it sets up vnis batch at a time (0 means
// DefaultBatch), each batch as one Ensure, and calls ready with each
// batch whose devices are up before it starts the next. It runs on the
// caller's goroutine and holds the Manager only for one batch at a time,
// so the caller's event loop keeps running while devices are created (the
// caller hands each batch to its loop in ready) and Supervise's repairs
// interleave. A batch that fails is undone as Ensure undoes; the batches
// before it stay set up (they were handed over), and the error says how
// many VNIs were. An error from ready stops it the same way.
func (m *Manager) EnsureInBatches(ctx context.Context, vnis []L2VNI, batch int, ready func([]L2VNI) error) error {
	if batch <= 0 {
		batch = DefaultBatch
	}
	if err := ValidateSet(vnis); err != nil {
		return fmt.Errorf("ensure l2vni devices: %w", err)
	}
	for start := 0; start < len(vnis); start += batch {
		part := vnis[start:min(start+batch, len(vnis))]
		if err := m.Ensure(ctx, part); err != nil {
			return fmt.Errorf("%w (the first %d of %d l2vnis were set up)", err, start, len(vnis))
		}
		if ready != nil {
			if err := ready(part); err != nil {
				return fmt.Errorf("hand over l2vnis %d-%d: %w (the first %d of %d l2vnis were set up)",
					part[0].VNI, part[len(part)-1].VNI, err, start+len(part), len(vnis))
			}
		}
	}
	return nil
}

// Remove deletes the VXLAN device and bridge of vni when evpnd created
// them (they carry OwnerAlias), after releasing its access ports from the
// bridge. Devices evpnd adopted are left in place; access ports are never
// deleted. Missing devices are not an error.
func (m *Manager) Remove(ctx context.Context, vni L2VNI) error {
	return m.RemoveAll(ctx, []L2VNI{vni})[0]
}

// RemoveAll is Remove for several VNIs, reading the links once for all
// of them (a read of every link costs tens of milliseconds on a node with
// thousands). It returns each VNI's error, in the order of vnis.
func (m *Manager) RemoveAll(ctx context.Context, vnis []L2VNI) []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]error, len(vnis))
	for _, vni := range vnis {
		m.sup.remove(vni.VNI) // before deleting: Supervise must not rebuild them
	}
	obs, err := m.observe(nil)
	if err != nil {
		for i, vni := range vnis {
			out[i] = fmt.Errorf("remove l2vni %d: %w", vni.VNI, err)
		}
		return out
	}
	w := obs.view()
	for i, vni := range vnis {
		out[i] = m.removeOne(ctx, w, vni)
	}
	return out
}

// removeOne removes vni's devices as Remove does, given the links.
func (m *Manager) removeOne(ctx context.Context, w view, vni L2VNI) error {
	var errs []error
	br := w.byName[vni.Bridge]
	for _, name := range vni.AccessPorts {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("remove l2vni %d: %w", vni.VNI, err)
		}
		ap := w.byName[name]
		if ap == nil || br == nil || ap.MasterIndex != br.Index {
			continue
		}
		if err := m.h.LinkSetNoMaster(linkRef(ap.Index, name)); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("release access port %s from %s: %w", name, vni.Bridge, err))
			continue
		}
		m.log.Debug("released access port", "vni", vni.VNI, "port", name, "bridge", vni.Bridge)
	}
	for _, name := range []string{vni.VXLAN, vni.Bridge} {
		l := w.byName[name]
		if l == nil {
			continue
		}
		if l.Alias != OwnerAlias {
			m.log.Info("device not created by evpnd, left in place", "vni", vni.VNI, "dev", name)
			continue
		}
		if err := m.h.LinkDel(linkRef(l.Index, name)); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
			continue
		}
		m.log.Info("deleted device", "vni", vni.VNI, "dev", name)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove l2vni %d: %w", vni.VNI, err)
	}
	return nil
}

// observe lists the links and reads the bridge-port flags of the VXLAN
// devices of vnis that are already ports of their bridge.
func (m *Manager) observe(vnis []L2VNI) (Observed, error) {
	links, err := retryDump(m.h.LinkList)
	if err != nil {
		return Observed{}, fmt.Errorf("list links: %w", err)
	}
	m.linksRead.Add(int64(len(links)))
	obs := Observed{Links: make([]LinkInfo, 0, len(links))}
	for _, l := range links {
		obs.Links = append(obs.Links, linkInfo(l))
	}
	if len(vnis) == 0 {
		return obs, nil
	}
	w := obs.view()
	var ports []*LinkInfo // adopted VXLAN devices already in their bridge
	for _, v := range vnis {
		vx, br := w.byName[v.VXLAN], w.byName[v.Bridge]
		if vx != nil && br != nil && vx.VXLAN != nil && vx.MasterIndex == br.Index {
			ports = append(ports, vx)
		}
	}
	if len(ports) == 0 {
		return obs, nil
	}
	flags, err := retryDump(func() (map[int]PortFlags, error) { return dumpPortFlags(m.ns) })
	if err != nil {
		return Observed{}, fmt.Errorf("read bridge port flags: %w", err)
	}
	for _, vx := range ports {
		if f, ok := flags[vx.Index]; ok {
			vx.Port = &f
		}
	}
	return obs, nil
}

// dumpPortFlags reads the flags of every bridge port in ns with a single
// AF_BRIDGE link dump (IFLA_PROTINFO), on a socket opened there.
func dumpPortFlags(ns netns.NsHandle) (map[int]PortFlags, error) {
	var s *nl.NetlinkSocket
	err := inNetns(ns, func() error {
		var err error
		s, err = nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	defer s.Close()
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
	req.AddData(nl.NewIfInfomsg(unix.AF_BRIDGE))
	msgs, dumpErr := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if dumpErr != nil && !errors.Is(dumpErr, netlink.ErrDumpInterrupted) {
		return nil, dumpErr
	}
	flags := make(map[int]PortFlags, len(msgs))
	for _, msg := range msgs {
		ifi := nl.DeserializeIfInfomsg(msg)
		attrs, err := nl.ParseRouteAttr(msg[ifi.Len():])
		if err != nil {
			return nil, fmt.Errorf("parse AF_BRIDGE link message: %w", err)
		}
		for _, a := range attrs {
			if a.Attr.Type != unix.IFLA_PROTINFO|unix.NLA_F_NESTED {
				continue
			}
			infos, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				return nil, fmt.Errorf("parse IFLA_PROTINFO: %w", err)
			}
			var f PortFlags
			for _, in := range infos {
				if len(in.Value) == 0 {
					continue
				}
				switch in.Attr.Type {
				case nl.IFLA_BRPORT_LEARNING:
					f.Learning = in.Value[0] != 0
				case nl.IFLA_BRPORT_NEIGH_SUPPRESS:
					f.NeighSuppress = in.Value[0] != 0
				}
			}
			flags[int(ifi.Index)] = f
		}
	}
	return flags, dumpErr
}

func linkInfo(l netlink.Link) LinkInfo {
	a := l.Attrs()
	li := LinkInfo{
		Index:       a.Index,
		Name:        a.Name,
		Kind:        l.Type(),
		Up:          a.Flags&net.FlagUp != 0,
		MTU:         a.MTU,
		MasterIndex: a.MasterIndex,
		Alias:       a.Alias,
	}
	if vx, ok := l.(*netlink.Vxlan); ok {
		li.VXLAN = &VXLANInfo{
			VNI:      uint32(vx.VxlanId),
			Local:    ipAddr(vx.SrcAddr),
			Group:    ipAddr(vx.Group),
			Port:     vx.Port,
			Learning: vx.Learning,
			External: vx.FlowBased,
		}
	}
	return li
}

func ipAddr(ip net.IP) netip.Addr {
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}

func addrIP(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

// linkRef names an existing link for the handle's setters, which only
// need its index.
func linkRef(index int, name string) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index, Name: name}}
}

// isGone reports the errors that mean the object is already absent.
func isGone(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

// retryDump runs a netlink dump again while the kernel reports that it was
// interrupted by a concurrent change (NLM_F_DUMP_INTR).
func retryDump[T any](dump func() (T, error)) (T, error) {
	const attempts = 10
	var (
		res T
		err error
	)
	for range attempts {
		res, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return res, err
		}
	}
	return res, fmt.Errorf("dump interrupted %d times in a row: %w", attempts, err)
}

// scopedMax is the most VNIs that observeFor looks up one by one (their
// requests pipelined); a larger set costs less with one list of every
// link. A batch of EnsureInBatches fits.
const scopedMax = DefaultBatch

// observeFor observes what planning vnis needs: observeScope for a few
// VNIs, observe (every link) for many.
func (m *Manager) observeFor(vnis []L2VNI) (Observed, error) {
	if len(vnis) <= scopedMax {
		return m.observeScope(vnis)
	}
	return m.observe(vnis)
}

// observeScope observes what planning vnis needs with requests in
// proportion to them, not to the links of the namespace (a link event on
// one of 16,384 VNIs must not read 32,768 links): each bridge, VXLAN
// device and access port by name, the ports of each bridge (a dump the
// kernel filters on IFLA_MASTER), and the masters of ports enslaved
// elsewhere. The VXLAN devices' bridge-port flags come with them. It does
// not look for another VXLAN device holding the VNI of one that is
// missing: the kernel refuses to create a second one, and that creation
// fails and is undone like any other.
func (m *Manager) observeScope(vnis []L2VNI) (Observed, error) {
	b, err := openBatch(m.ns)
	if err != nil {
		return Observed{}, err
	}
	defer b.Close()
	b.keep = true
	var obs Observed
	seen := map[int]bool{}
	add := func(res []batchResult, master int) error {
		for _, r := range res {
			if r.err != nil {
				if isGone(r.err) {
					continue
				}
				return r.err
			}
			links, err := decodeLinks(r.links)
			if err != nil {
				return err
			}
			m.linksRead.Add(int64(len(links)))
			for _, l := range links {
				if !seen[l.Index] && (master == 0 || l.MasterIndex == master) {
					seen[l.Index] = true
					obs.Links = append(obs.Links, l)
				}
			}
		}
		return nil
	}
	var reqs []request
	bridges := map[string]bool{}
	for _, v := range vnis {
		bridges[v.Bridge] = true
		for _, n := range append([]string{v.Bridge, v.VXLAN}, v.AccessPorts...) {
			reqs = append(reqs, getLinkReq(0, n))
		}
	}
	res, err := b.exchange(reqs)
	if err != nil {
		return Observed{}, fmt.Errorf("look links up: %w", err)
	}
	if err := add(res, 0); err != nil {
		return Observed{}, fmt.Errorf("look links up: %w", err)
	}
	for _, l := range slices.Clone(obs.Links) {
		if l.Kind != "bridge" || !bridges[l.Name] {
			continue
		}
		res, err := retryDump(func() ([]batchResult, error) {
			res, err := b.exchange([]request{portsOfReq(l.Index)})
			if err == nil && res[0].err != nil && errors.Is(res[0].err, unix.EINTR) {
				err = netlink.ErrDumpInterrupted
			}
			return res, err
		})
		if err != nil {
			return Observed{}, fmt.Errorf("list the ports of %s: %w", l.Name, err)
		}
		if err := add(res, l.Index); err != nil {
			return Observed{}, fmt.Errorf("list the ports of %s: %w", l.Name, err)
		}
	}
	reqs = reqs[:0]
	for _, l := range obs.Links {
		if l.MasterIndex != 0 && !seen[l.MasterIndex] {
			reqs = append(reqs, getLinkReq(l.MasterIndex, ""))
			seen[l.MasterIndex] = true // asked once
		}
	}
	if len(reqs) > 0 {
		for _, r := range reqs {
			delete(seen, int(binary.NativeEndian.Uint32(r.body[4:8])))
		}
		res, err := b.exchange(reqs)
		if err != nil {
			return Observed{}, fmt.Errorf("look masters up: %w", err)
		}
		if err := add(res, 0); err != nil {
			return Observed{}, fmt.Errorf("look masters up: %w", err)
		}
	}
	return obs, nil
}

// observeAfter observes vnis' devices after a change, for noting them and
// their MTU warnings: observeFor, except that a large set needs no port
// flags.
func (m *Manager) observeAfter(vnis []L2VNI) (Observed, error) {
	if len(vnis) <= scopedMax {
		return m.observeScope(vnis)
	}
	return m.observe(nil)
}
