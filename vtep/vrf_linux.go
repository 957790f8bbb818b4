package vtep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrBackendUnsupported is wrapped by ProbeBackend's error when the kernel
// cannot provide a backend.
var ErrBackendUnsupported = errors.New("backend not supported by this kernel")

// ProbeBackend checks that the kernel can provide backend b: for vrf it
// creates a VRF device in a throwaway network namespace (so nothing is
// left behind whatever happens); for netns it creates and deletes a
// namespace. The error, wrapping ErrBackendUnsupported when the kernel
// lacks the feature, says what to configure instead. Call it once at
// start for each backend the configuration uses.
func ProbeBackend(b Backend) error {
	switch b {
	case BackendDefault:
		return nil
	case BackendNetns, BackendVRF:
	default:
		return fmt.Errorf("unknown VRF backend %q: use default, netns or vrf", b)
	}
	name := fmt.Sprintf("evpnd-probe-%d-%d", os.Getpid(), probeSeq.Add(1))
	ns, err := createNamedNS(name)
	if err != nil {
		if b == BackendNetns {
			return fmt.Errorf("probe backend netns: cannot create a network namespace (%w): %w; evpnd needs CAP_SYS_ADMIN and a kernel with CONFIG_NET_NS for it", err, ErrBackendUnsupported)
		}
		return fmt.Errorf("probe backend %s: create a throwaway namespace: %w", b, err)
	}
	defer func() {
		ns.Close()
		_ = netns.DeleteNamed(name)
	}()
	if b == BackendNetns {
		return nil
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("probe backend vrf: %w", err)
	}
	defer h.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "probe"
	if err := h.LinkAdd(&netlink.Vrf{LinkAttrs: attrs, Table: 4242}); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("backend vrf needs Linux VRF devices (CONFIG_NET_VRF, module vrf), which this kernel does not provide (creating one: %v): %w; load the vrf module, or configure backend netns (a namespace per tenant) or default", err, ErrBackendUnsupported)
		}
		return fmt.Errorf("probe backend vrf: create a VRF device: %w", err)
	}
	return nil
}

var probeSeq atomic.Uint64

// createNamedNS creates the network namespace /run/netns/name and returns
// a handle to it, without changing the namespace of the calling thread:
// the work runs on a locked thread of its own, which is left locked (and
// so dies with its goroutine) if its namespace could not be restored.
func createNamedNS(name string) (netns.NsHandle, error) {
	type res struct {
		h   netns.NsHandle
		err error
	}
	c := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- res{netns.None(), fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if rerr := netns.Set(orig); rerr != nil {
			// Stay locked: the thread is in the wrong namespace.
			if err == nil {
				h.Close()
				_ = netns.DeleteNamed(name)
			}
			c <- res{netns.None(), errors.Join(err, fmt.Errorf("restore netns: %w", rerr))}
			return
		}
		runtime.UnlockOSThread()
		c <- res{h, err}
	}()
	r := <-c
	return r.h, r.err
}

// ObserveNS reads a namespace's links for PlanVRF through h (in ns): with
// their MACs, addresses, VRF tables and bridge-port flags.
func ObserveNS(h *netlink.Handle, ns netns.NsHandle) (NSObserved, error) {
	links, err := retryDump(h.LinkList)
	if err != nil {
		return NSObserved{}, fmt.Errorf("list links: %w", err)
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return NSObserved{}, fmt.Errorf("list addresses: %w", err)
	}
	byIndex := map[int][]netip.Prefix{}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], netip.PrefixFrom(ip.Unmap(), ones))
	}
	flags, err := retryDump(func() (map[int]PortFlags, error) { return dumpPortFlags(ns) })
	if err != nil {
		return NSObserved{}, fmt.Errorf("read bridge port flags: %w", err)
	}
	obs := NSObserved{Exists: true, Links: make([]LinkInfo, 0, len(links))}
	for _, l := range links {
		li := linkInfo(l)
		li.MAC = l.Attrs().HardwareAddr.String()
		li.Addrs = byIndex[li.Index]
		if vrf, ok := l.(*netlink.Vrf); ok {
			li.VRFTable = vrf.Table
		}
		if f, ok := flags[li.Index]; ok && li.MasterIndex != 0 {
			li.Port = &f
		}
		obs.Links = append(obs.Links, li)
	}
	return obs, nil
}

// EnsureVRF creates or adopts the devices of tenant VRF v (PlanVRF), in
// the Manager's namespace (the underlay) and, on the netns backend, in the
// tenant's namespace, which it creates if missing. A conflict changes
// nothing. If applying fails, everything this call did is undone in
// reverse order (a namespace it created is deleted once the devices it
// moved in are back), so a mistake never leaves a half-built tenant.
// Calling it again with the same VRF changes nothing.
//
// The backend must be one the kernel provides: call ProbeBackend at start.
func (m *Manager) EnsureVRF(ctx context.Context, v VRF) error {
	_, err := m.ensureVRF(ctx, v)
	return err
}

// ensureVRF is EnsureVRF, also returning how many changes it applied.
func (m *Manager) ensureVRF(ctx context.Context, v VRF) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := v.Validate(); err != nil {
		return 0, fmt.Errorf("ensure vrf %s: %w", v.Name, err)
	}
	under, err := ObserveNS(m.h, m.ns)
	if err != nil {
		return 0, fmt.Errorf("ensure vrf %s: %w", v.Name, err)
	}
	a := &l3applier{m: m, handles: map[string]*netlink.Handle{"": m.h}, nsh: map[string]netns.NsHandle{}}
	defer a.close()
	var tenant NSObserved
	if v.Backend == BackendNetns {
		if nsh, err := netns.GetFromName(v.Namespace); err == nil {
			h, err := netlink.NewHandleAt(nsh)
			if err != nil {
				nsh.Close()
				return 0, fmt.Errorf("ensure vrf %s: open namespace %s: %w", v.Name, v.Namespace, err)
			}
			a.handles[v.Namespace], a.nsh[v.Namespace] = h, nsh
			if tenant, err = ObserveNS(h, nsh); err != nil {
				return 0, fmt.Errorf("ensure vrf %s: namespace %s: %w", v.Name, v.Namespace, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("ensure vrf %s: open namespace %s: %w", v.Name, v.Namespace, err)
		}
	}
	plan, err := PlanVRF(v, under, tenant)
	if err != nil {
		return 0, fmt.Errorf("ensure vrf %s: nothing changed: %w", v.Name, err)
	}
	for _, act := range plan.Actions {
		err := ctx.Err()
		if err == nil {
			err = a.do(act)
		}
		if err != nil {
			err = fmt.Errorf("vrf %s: %s: %w", v.Name, act, err)
			if rbErr := a.rollback(); rbErr != nil {
				return len(plan.Actions), errors.Join(err, fmt.Errorf("rollback incomplete, devices may be half-built: %w", rbErr))
			}
			return len(plan.Actions), fmt.Errorf("ensure %w (undid the %d changes this call had made)", err, len(a.undos))
		}
		m.log.Debug("applied", "vrf", v.Name, "vni", act.VNI, "dev", act.Dev, "action", act.String())
	}
	if v.Backend == BackendNetns {
		if err := enableForwarding(a.nsh[v.Namespace], v.hasIPv6()); err != nil {
			err = fmt.Errorf("vrf %s: namespace %s: %w", v.Name, v.Namespace, err)
			if rbErr := a.rollback(); rbErr != nil {
				return len(plan.Actions), errors.Join(err, fmt.Errorf("rollback incomplete, devices may be half-built: %w", rbErr))
			}
			return len(plan.Actions), fmt.Errorf("ensure %w (undid the %d changes this call had made)", err, len(a.undos))
		}
	}
	for _, ab := range plan.Absent {
		if ab.Uplink {
			m.log.Warn("uplink interface does not exist (yet)", "vrf", v.Name, "uplink", ab.Port)
			continue
		}
		m.log.Warn("access interface does not exist (yet)", "vrf", v.Name, "vni", ab.VNI, "port", ab.Port, "bridge", ab.Bridge)
	}
	m.log.Info("vrf devices ensured", "vrf", v.Name, "backend", string(v.Backend), "actions", len(plan.Actions), "adopted", len(plan.Adopted))
	ns := m.ns
	if v.Backend == BackendNetns {
		ns = a.nsh[v.Namespace]
	}
	if ns.IsOpen() || v.Backend != BackendNetns {
		m.warnForwarding(v, ns)
	}
	return len(plan.Actions), nil
}

// warnForwarding warns when the namespace that routes v's traffic has
// IPv4 forwarding off, or IPv6 forwarding off while v has an IPv6
// gateway: the devices and routes are all in place, yet the kernel drops
// every packet routed between subnets, with no other sign. Enabling
// forwarding is the operator's decision (a node's other interfaces
// start to route too), as it is for FRR; evpnd only says so, once per
// change.
func (m *Manager) warnForwarding(v VRF, ns netns.NsHandle) {
	off, err := forwardingOff(ns, v.hasIPv6())
	if err != nil {
		m.log.Debug("cannot read the forwarding sysctls", "vrf", v.Name, "err", err)
		return
	}
	key := strings.Join(off, " ")
	if m.fwdWarned == nil {
		m.fwdWarned = map[string]string{}
	}
	if m.fwdWarned[v.Name] == key {
		return
	}
	m.fwdWarned[v.Name] = key
	if len(off) > 0 {
		m.log.Warn("forwarding is off where the VRF routes: traffic between its subnets and to remote hosts is dropped; enable it (sysctl -w NAME=1)",
			"vrf", v.Name, "backend", string(v.Backend), "off", key)
	}
}

// forwardingOff returns the forwarding sysctls that are off in ns:
// net.ipv4.ip_forward and, with v6, net.ipv6.conf.all.forwarding (unless
// the kernel has no IPv6).
func forwardingOff(ns netns.NsHandle, v6 bool) ([]string, error) {
	var off []string
	err := inNetns(ns, func() error {
		files := [][2]string{{"net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"}}
		if v6 {
			files = append(files, [2]string{"net.ipv6.conf.all.forwarding", "/proc/sys/net/ipv6/conf/all/forwarding"})
		}
		for _, f := range files {
			b, err := os.ReadFile(f[1])
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == "0" {
				off = append(off, f[0])
			}
		}
		return nil
	})
	return off, err
}

// l3applier applies a VRF plan across namespaces, keeping undo steps.
type l3applier struct {
	m       *Manager
	handles map[string]*netlink.Handle // "" = underlay
	nsh     map[string]netns.NsHandle  // tenant namespaces opened or created
	undos   []undo
}

func (a *l3applier) close() {
	for ns, h := range a.handles {
		if ns != "" {
			h.Close()
		}
	}
	for _, n := range a.nsh {
		n.Close()
	}
}

func (a *l3applier) push(what string, fn func() error) {
	a.undos = append(a.undos, undo{what: what, fn: fn})
}

func (a *l3applier) rollback() error {
	var errs []error
	for i := len(a.undos) - 1; i >= 0; i-- {
		u := a.undos[i]
		if err := u.fn(); err != nil && !isGone(err) && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("rollback: %s: %w", u.what, err))
			continue
		}
		a.m.log.Info("rolled back", "step", u.what)
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func (a *l3applier) handle(ns string) (*netlink.Handle, error) {
	if h, ok := a.handles[ns]; ok {
		return h, nil
	}
	return nil, fmt.Errorf("namespace %s is not open", ns)
}

// underlayFd is the file descriptor of the underlay namespace, for moving
// a device back.
func (a *l3applier) underlayFd() (netns.NsHandle, func(), error) {
	if a.m.ns.IsOpen() {
		return a.m.ns, func() {}, nil
	}
	h, err := netns.Get()
	if err != nil {
		return netns.None(), nil, err
	}
	return h, func() { h.Close() }, nil
}

func (a *l3applier) do(act L3Action) error {
	if act.Op == L3CreateNS {
		nsh, err := createNamedNS(act.NS)
		if err != nil {
			return err
		}
		h, err := netlink.NewHandleAt(nsh)
		if err != nil {
			nsh.Close()
			_ = netns.DeleteNamed(act.NS)
			return err
		}
		a.handles[act.NS], a.nsh[act.NS] = h, nsh
		name := act.NS
		a.push("ip netns del "+name, func() error { return netns.DeleteNamed(name) })
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		return err
	}
	h, err := a.handle(act.NS)
	if err != nil {
		return err
	}
	switch act.Op {
	case L3CreateVRF:
		attrs := netlink.NewLinkAttrs()
		attrs.Name = act.Dev
		return a.create(h, act.Dev, &netlink.Vrf{LinkAttrs: attrs, Table: act.Table}, true)
	case L3CreateBridge:
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = act.Dev, act.MTU
		return a.create(h, act.Dev, &netlink.Bridge{LinkAttrs: attrs}, act.IPv6)
	case L3CreateVXLAN:
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = act.Dev, act.MTU
		return a.create(h, act.Dev, &netlink.Vxlan{LinkAttrs: attrs, VxlanId: int(act.Spec.VNI), SrcAddr: addrIP(act.Spec.Local), Port: act.Spec.port()}, false)
	}
	dev, err := h.LinkByName(act.Dev)
	if err != nil {
		return err
	}
	name := act.Dev
	switch act.Op {
	case L3MoveToNS:
		th, err := a.handle(act.To)
		if err != nil {
			return err
		}
		if err := h.LinkSetNsFd(dev, int(a.nsh[act.To])); err != nil {
			return err
		}
		if act.Created {
			// Created by this plan: its creation's undo cannot reach it in
			// the tenant namespace; delete it there.
			a.push("ip -n "+act.To+" link del "+name, func() error {
				l, err := th.LinkByName(name)
				if err != nil {
					return err
				}
				return th.LinkDel(l)
			})
		} else {
			a.push("ip -n "+act.To+" link set "+name+" netns <underlay>", func() error {
				l, err := th.LinkByName(name)
				if err != nil {
					return err
				}
				fd, done, err := a.underlayFd()
				if err != nil {
					return err
				}
				defer done()
				return th.LinkSetNsFd(l, int(fd))
			})
		}
		return nil
	case L3SetMTU:
		if err := h.LinkSetMTU(dev, act.MTU); err != nil {
			return err
		}
		if !act.Created {
			prev := act.PrevMTU
			a.push("ip link set "+name+" mtu "+strconv.Itoa(prev), func() error { return h.LinkSetMTU(dev, prev) })
		}
	case L3SetMaster:
		master, err := h.LinkByName(act.Master)
		if err != nil {
			return err
		}
		prev := dev.Attrs().MasterIndex
		if err := h.LinkSetMasterByIndex(dev, master.Attrs().Index); err != nil {
			return err
		}
		if !act.Created {
			a.push("ip link set "+name+" nomaster", func() error {
				if prev != 0 {
					return h.LinkSetMasterByIndex(dev, prev)
				}
				return h.LinkSetNoMaster(dev)
			})
		}
	case L3SetPortFlags:
		if err := h.LinkSetLearning(dev, false); err != nil {
			return fmt.Errorf("turn bridge port learning off: %w", err)
		}
		if err := h.LinkSetBrNeighSuppress(dev, true); err != nil {
			a.m.log.Warn("kernel refused neigh_suppress on the VXLAN bridge port; ARP/ND will be flooded", "vni", act.VNI, "dev", name, "err", err)
		}
		if prev := act.PrevPort; prev != nil && !act.Created {
			a.push("bridge link set dev "+name+" (restore learning, neigh_suppress)", func() error {
				return errors.Join(h.LinkSetLearning(dev, prev.Learning), h.LinkSetBrNeighSuppress(dev, prev.NeighSuppress))
			})
		}
	case L3SetMAC:
		if err := h.LinkSetHardwareAddr(dev, act.MAC.HardwareAddr()); err != nil {
			return err
		}
		if prev, err := net.ParseMAC(act.PrevMAC); err == nil && !act.Created {
			a.push("ip link set "+name+" address "+act.PrevMAC, func() error { return h.LinkSetHardwareAddr(dev, prev) })
		}
	case L3SetIPv6:
		// An L2VNI's bridge is created with IPv6 off (disableIPv6): the
		// SVI turns it on first.
		ns := a.m.ns
		if act.NS != "" {
			ns = a.nsh[act.NS]
		}
		if off, err := ipv6Off(ns, name); err != nil {
			return err
		} else if off {
			if err := setIPv6Off(ns, name, false); err != nil {
				return err
			}
			if !act.Created {
				a.push("sysctl -w net.ipv6.conf."+name+".disable_ipv6=1", func() error { return setIPv6Off(ns, name, true) })
			}
		}
		if err := h.LinkSetIP6AddrGenMode(dev, in6AddrGenModeEUI64); err != nil {
			return err
		}
		if !act.Created {
			a.push("ip link set "+name+" addrgenmode none", func() error { return h.LinkSetIP6AddrGenMode(dev, in6AddrGenModeNone) })
		}
	case L3AddAddr:
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: addrIP(act.Addr.Addr()), Mask: net.CIDRMask(act.Addr.Bits(), act.Addr.Addr().BitLen())}}
		if act.Addr.Addr().Is6() {
			// Every leaf holds the anycast gateway address: duplicate
			// address detection would only find the others.
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(dev, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		if !act.Created {
			a.push("ip addr del "+act.Addr.String()+" dev "+name, func() error { return h.AddrDel(dev, addr) })
		}
	case L3SetUp:
		if err := h.LinkSetUp(dev); err != nil {
			return err
		}
		if !act.Created {
			a.push("ip link set "+name+" down", func() error { return h.LinkSetDown(dev) })
		}
	default:
		return fmt.Errorf("unknown action %d", act.Op)
	}
	return nil
}

// create adds link through h (down), records its deletion as the undo
// step, turns IPv6 address generation off unless ipv6, and marks it
// evpnd's (OwnerAlias).
func (a *l3applier) create(h *netlink.Handle, name string, link netlink.Link, ipv6 bool) error {
	if err := h.LinkAdd(link); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create %s: it appeared meanwhile, or the kernel refused a duplicate (VNI and port already in use?): %w", name, err)
		}
		return fmt.Errorf("create %s: %w", name, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up created %s: %w", name, err)
	}
	ref := linkRef(l.Attrs().Index, name)
	a.push("ip link del "+name, func() error { return h.LinkDel(ref) })
	if !ipv6 {
		if err := h.LinkSetIP6AddrGenMode(ref, in6AddrGenModeNone); err != nil && !errors.Is(err, unix.EAFNOSUPPORT) {
			return fmt.Errorf("set addrgenmode none on %s: %w", name, err)
		}
	}
	if err := h.LinkSetAlias(ref, OwnerAlias); err != nil {
		return fmt.Errorf("mark %s as evpnd's (alias %s): %w", name, OwnerAlias, err)
	}
	return nil
}

// in6AddrGenModeEUI64 is IN6_ADDR_GEN_MODE_EUI64 from linux/if_link.h.
const in6AddrGenModeEUI64 = 0

// RemoveVRF undoes EnsureVRF for v: access ports are released (and, on
// the netns backend, moved back to the underlay namespace); the bridges,
// VXLAN devices and VRF device evpnd created (they carry OwnerAlias) are
// deleted, adopted ones left in place; a tenant namespace left holding
// nothing but its loopback is deleted. Missing devices and a missing
// namespace are not errors.
func (m *Manager) RemoveVRF(ctx context.Context, v VRF) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.fwdWarned, v.Name)
	h, closeH, gone, err := m.vrfHandle(v)
	if gone {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove vrf %s: %w", v.Name, err)
	}
	defer closeH()
	ns := ""
	if v.Backend == BackendNetns {
		ns = v.Namespace
	}
	var errs []error
	fd, done, err := (&l3applier{m: m}).underlayFd()
	if err != nil {
		return fmt.Errorf("remove vrf %s: %w", v.Name, err)
	}
	defer done()
	for _, l2 := range v.l2Set() {
		for _, p := range l2.AccessPorts {
			l, err := h.LinkByName(p)
			if err != nil {
				continue
			}
			if l.Attrs().MasterIndex != 0 {
				if err := h.LinkSetNoMaster(l); err != nil && !isGone(err) {
					errs = append(errs, fmt.Errorf("release %s: %w", p, err))
				}
			}
			if ns != "" {
				if err := h.LinkSetNsFd(l, int(fd)); err != nil && !isGone(err) {
					errs = append(errs, fmt.Errorf("move %s back to the underlay: %w", p, err))
				}
			}
		}
	}
	// Uplinks are released and lose the addresses evpnd gave them (a move
	// to another namespace flushes them).
	for _, u := range v.Uplinks {
		l, err := h.LinkByName(u.Name)
		if err != nil {
			continue
		}
		if l.Attrs().MasterIndex != 0 && v.Backend == BackendVRF {
			if err := h.LinkSetNoMaster(l); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("release uplink %s: %w", u.Name, err))
			}
		}
		if ns != "" {
			if err := h.LinkSetNsFd(l, int(fd)); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("move uplink %s back to the underlay: %w", u.Name, err))
			}
			continue
		}
		for _, a := range u.Addrs {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: addrIP(a.Addr()), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
			if err := h.AddrDel(l, addr); err != nil && !isGone(err) && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove address %s of uplink %s: %w", a, u.Name, err))
			}
		}
	}
	names := []string{}
	for _, l2 := range v.l2Set() {
		names = append(names, l2.VXLAN, l2.Bridge)
	}
	if v.Backend == BackendVRF {
		names = append(names, v.Name)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("remove vrf %s: %w", v.Name, err)
		}
		l, err := h.LinkByName(name)
		if err != nil {
			continue
		}
		if l.Attrs().Alias != OwnerAlias {
			m.log.Info("device not created by evpnd, left in place", "vrf", v.Name, "dev", name)
			continue
		}
		if err := h.LinkDel(l); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
		}
	}
	if ns != "" && len(errs) == 0 {
		links, err := h.LinkList()
		if err == nil && len(links) == 1 && links[0].Attrs().Name == "lo" {
			if err := netns.DeleteNamed(ns); err != nil {
				errs = append(errs, fmt.Errorf("delete namespace %s: %w", ns, err))
			}
		} else if err == nil {
			m.log.Info("tenant namespace holds other devices, left in place", "vrf", v.Name, "netns", ns, "links", len(links))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove vrf %s: %w", v.Name, errors.Join(errs...))
	}
	m.log.Info("vrf devices removed", "vrf", v.Name, "backend", string(v.Backend))
	return nil
}

// enableForwarding turns routing on in a tenant namespace evpnd owns
// (backend netns): net.ipv4.ip_forward=1 and, when the VRF has an IPv6
// gateway, net.ipv6.conf.all.forwarding=1. A new namespace starts with
// IPv6 forwarding off (IPv4's may be inherited from the host's, per
// net.core.devconf_inherit_init_net), and its routed traffic would then
// be dropped at the ingress leaf. Writing an already set value changes
// nothing, so this runs on every ensure (and repairs an operator's 0).
func enableForwarding(ns netns.NsHandle, ipv6 bool) error {
	files := []string{"/proc/sys/net/ipv4/ip_forward"}
	if ipv6 {
		files = append(files, "/proc/sys/net/ipv6/conf/all/forwarding")
	}
	return inNetns(ns, func() error {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && strings.TrimSpace(string(b)) == "1" {
				continue
			}
			if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("turn forwarding on: %w", err)
			}
		}
		return nil
	})
}

// ShrinkVRF removes from the running VRF old what next no longer has,
// before EnsureVRF(next) adds what next has new (a config reload that
// changes a VRF in place): the members that next lacks, or whose L2VNI
// differs there, are removed as RemoveVRF removes a VRF's (their access
// ports released and, on the netns backend, moved back to the underlay
// namespace; the devices evpnd created deleted); the gateway addresses
// that a kept member's SVI loses are deleted. The VRF's own devices and
// namespace stay. old and next must have the same name, backend and
// namespace. Missing devices are not errors.
func (m *Manager) ShrinkVRF(ctx context.Context, old, next VRF) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, closeH, gone, err := m.vrfHandle(old)
	if gone {
		return nil
	}
	if err != nil {
		return fmt.Errorf("shrink vrf %s: %w", old.Name, err)
	}
	defer closeH()
	var errs []error
	fd, done, err := (&l3applier{m: m}).underlayFd()
	if err != nil {
		return fmt.Errorf("shrink vrf %s: %w", old.Name, err)
	}
	defer done()
	kept := map[uint32]SVI{}
	for _, s := range next.Members {
		kept[s.L2.VNI] = s
	}
	for _, s := range old.Members {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("shrink vrf %s: %w", old.Name, err)
		}
		n, ok := kept[s.L2.VNI]
		if ok && sameL2(s.L2, n.L2) {
			for _, g := range s.GatewayIPs {
				if slices.Contains(n.GatewayIPs, g) {
					continue
				}
				l, err := h.LinkByName(s.L2.Bridge)
				if err != nil {
					continue
				}
				addr := &netlink.Addr{IPNet: &net.IPNet{IP: addrIP(g.Addr()), Mask: net.CIDRMask(g.Bits(), g.Addr().BitLen())}}
				if err := h.AddrDel(l, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !isGone(err) {
					errs = append(errs, fmt.Errorf("delete gateway %s from %s: %w", g, s.L2.Bridge, err))
				}
			}
			continue
		}
		for _, p := range s.L2.AccessPorts {
			l, err := h.LinkByName(p)
			if err != nil {
				continue
			}
			if l.Attrs().MasterIndex != 0 {
				if err := h.LinkSetNoMaster(l); err != nil && !isGone(err) {
					errs = append(errs, fmt.Errorf("release %s: %w", p, err))
				}
			}
			if old.Backend == BackendNetns && !(ok && slices.Contains(n.L2.AccessPorts, p)) {
				if err := h.LinkSetNsFd(l, int(fd)); err != nil && !isGone(err) {
					errs = append(errs, fmt.Errorf("move %s back to the underlay: %w", p, err))
				}
			}
		}
		for _, name := range []string{s.L2.VXLAN, s.L2.Bridge} {
			l, err := h.LinkByName(name)
			if err != nil {
				continue
			}
			if l.Attrs().Alias != OwnerAlias {
				m.log.Info("device not created by evpnd, left in place", "vrf", old.Name, "dev", name)
				continue
			}
			if err := h.LinkDel(l); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("shrink vrf %s: %w", old.Name, errors.Join(errs...))
	}
	return nil
}

// sameL2 reports whether two L2VNIs have the same devices and settings.
func sameL2(a, b L2VNI) bool {
	return a.VNI == b.VNI && a.VXLAN == b.VXLAN && a.Bridge == b.Bridge && slices.Equal(a.AccessPorts, b.AccessPorts) &&
		a.Local == b.Local && a.UDPPort == b.UDPPort && a.MTU == b.MTU && a.DefaultVXLANMTU == b.DefaultVXLANMTU
}

// vrfHandle returns a handle where v's tenant devices live: the
// manager's own, or on the netns backend one in v's namespace, with the
// function that releases it. gone reports that the namespace does not
// exist (nothing of v is left to change).
func (m *Manager) vrfHandle(v VRF) (h *netlink.Handle, release func(), gone bool, err error) {
	if v.Backend != BackendNetns {
		return m.h, func() {}, false, nil
	}
	nsh, err := netns.GetFromName(v.Namespace)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, true, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("open namespace %s: %w", v.Namespace, err)
	}
	if h, err = netlink.NewHandleAt(nsh); err != nil {
		nsh.Close()
		return nil, nil, false, err
	}
	return h, func() { h.Close(); nsh.Close() }, false, nil
}
