package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// tenant is one tenant VRF at run time: its devices (vtep.EnsureVRF), the
// namespace they live in, and fib's L3 side for it.
type tenant struct {
	cfg configs.VRF
	v   vtep.VRF
	// ns and h are the tenant's namespace and a handle in it (netns
	// backend); ns is vnetns.None() and h nil otherwise (the underlay's).
	ns vnetns.NsHandle
	h  *netlink.Handle
	// l3 is the VRF's L3 desired state (ARP/ND suppression neighbours, host
	// routes, type-5 paths): what the BGP side sets; l3rec writes it
	// through l3k.
	l3    *fib.L3Desired
	l3k   *fib.L3Netlink
	l3rec *fib.L3Reconciler
	// statics keeps the VRF's static routes (configs.VRF.Routes) in its
	// table, marked fib.StaticProtocol; nil when the VRF has none and the
	// table holds none.
	statics *fib.Underlay
	// rewatch restarts the watch of local hosts (a repair may have
	// re-created an SVI).
	rewatch chan struct{}
	// advertise are the prefixes the VRF originates as type-5 routes
	// (configs.VRFAdvertisedPrefixes); the loop owns it (a reload may
	// change it in place).
	advertise []netip.Prefix
	// fdb and apiFDB are fib's FDB kernel sides in the tenant's namespace
	// (netns backend; nil otherwise), the reconciler's and the API's, and
	// learner the learner of its L2VNIs there.
	fdb, apiFDB *fib.NetlinkKernel
	learner     *vtep.Learner
	// stop ends the tenant's goroutines (startTenant); wg waits for them.
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func (t *tenant) close() {
	if t.statics != nil {
		t.statics.Close()
	}
	if t.fdb != nil {
		t.fdb.Close()
	}
	if t.apiFDB != nil {
		t.apiFDB.Close()
	}
	if t.l3k != nil {
		t.l3k.Close()
	}
	if t.h != nil {
		t.h.Close()
	}
	if t.ns.IsOpen() {
		t.ns.Close()
	}
}

// inTenantNS reports whether the tenant's L2VNIs live in a namespace of
// their own.
func (t *tenant) inTenantNS() bool { return t.cfg.Backend == configs.BackendNetns }

// vrfOf returns the VRF routing L2VNI vni, if any.
func vrfOf(c *configs.Config, vni uint32) (configs.VRF, bool) {
	for _, f := range c.VRFs {
		for _, m := range f.L2VNIs {
			if m.VNI == vni {
				return f, true
			}
		}
	}
	return configs.VRF{}, false
}

// standaloneVNIs returns the L2VNIs routed in no VRF: those vtep.Manager's
// Ensure and Supervise keep (EnsureVRF builds the members).
func (d *Daemon) standaloneVNIs() []vtep.L2VNI {
	var out []vtep.L2VNI
	for _, v := range d.cfg.L2VNIs {
		if _, ok := vrfOf(d.cfg, v.VNI); !ok {
			out = append(out, d.vtepVNI(d.cfg, v))
		}
	}
	return out
}

// vtepVRF is the vtep description of VRF f of the config in force.
func (d *Daemon) vtepVRF(f configs.VRF) vtep.VRF { return d.vtepVRFOf(d.cfg, f) }

// vtepVRFOf is the vtep description of VRF f of config c (which holds its
// member L2VNIs).
func (d *Daemon) vtepVRFOf(c *configs.Config, f configs.VRF) vtep.VRF {
	v := vtep.VRF{
		Name: f.Name, Backend: vtep.Backend(f.Backend), Namespace: f.Namespace, Table: f.Table,
		L3: vtep.L2VNI{VNI: f.L3VNI, VXLAN: f.VXLANDevice, Bridge: f.Bridge, Local: c.VTEPIP,
			UDPPort: f.UDPPort, MTU: f.MTU, DefaultVXLANMTU: d.vxlanMTU},
		RouterMAC: c.VRFRouterMAC(f),
	}
	for _, u := range f.Uplinks {
		v.Uplinks = append(v.Uplinks, vtep.Uplink{Name: u.Interface, Addrs: u.Addresses})
	}
	for _, m := range f.L2VNIs {
		for _, l := range c.L2VNIs {
			if l.VNI == m.VNI {
				v.Members = append(v.Members, vtep.SVI{L2: d.vtepVNI(c, l),
					GatewayMAC: configs.MemberGatewayMAC(f, m), GatewayIPs: m.GatewayIPs})
			}
		}
	}
	return v
}

// l3Devices is what fib's L3 side writes through for VRF f of config c.
func (d *Daemon) l3Devices(c *configs.Config, f configs.VRF) fib.L3Devices {
	dev := fib.L3Devices{VRF: f.Name, L3VNI: f.L3VNI, Table: fib.MainTable, SVI: f.Bridge, VXLAN: f.VXLANDevice,
		UnderlayTable: f.Backend == configs.BackendDefault, LocalVTEP: c.VTEPIP}
	if f.Backend == configs.BackendVRF {
		dev.Table = int(f.Table)
	}
	for _, m := range f.L2VNIs {
		for _, l := range c.L2VNIs {
			if l.VNI == m.VNI {
				dev.MemberSVIs = append(dev.MemberSVIs, l.Bridge)
				dev.MemberVNIs = append(dev.MemberVNIs, l.VNI)
			}
		}
	}
	return dev
}

// probeBackends checks, before anything is touched, that the kernel
// provides every backend the VRFs use.
func (d *Daemon) probeBackends() error {
	seen := map[configs.Backend]bool{}
	var errs []error
	for _, f := range d.cfg.VRFs {
		if seen[f.Backend] {
			continue
		}
		seen[f.Backend] = true
		if err := vtep.ProbeBackend(vtep.Backend(f.Backend)); err != nil {
			errs = append(errs, fmt.Errorf("vrf %s: %w", f.Name, err))
		}
	}
	return errors.Join(errs...)
}

// preexisting is what of the configured devices the kernel held before
// this start touched anything, so that a failed start removes only what
// it created itself (a restarted evpnd's devices keep forwarding).
type preexisting struct {
	links map[string]bool // underlay namespace
	// nss holds the tenant namespaces that exist, each with its links.
	nss map[string]map[string]bool
	// down holds the underlay's links that were administratively down:
	// access ports this start brought up are put down again by a rollback.
	down map[string]bool
}

func (d *Daemon) observePreexisting(h *netlink.Handle) (preexisting, error) {
	p := preexisting{links: map[string]bool{}, nss: map[string]map[string]bool{}, down: map[string]bool{}}
	links, err := vtep.NodeOf(h).Links()
	if err != nil {
		return p, err
	}
	for _, l := range links {
		p.links[l.Name] = true
		if !l.Up {
			p.down[l.Name] = true
		}
	}
	for _, f := range d.cfg.VRFs {
		if f.Backend != configs.BackendNetns {
			continue
		}
		n, err := vtep.OpenNode(f.Namespace)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return p, err
		}
		names, err := n.LinkNames()
		n.Close()
		if err != nil {
			return p, fmt.Errorf("namespace %s: %w", f.Namespace, err)
		}
		p.nss[f.Namespace] = names
	}
	return p, nil
}

// vrfIsNew reports whether VRF f had nothing in the kernel before start.
func (p preexisting) vrfIsNew(f configs.VRF) bool {
	switch f.Backend {
	case configs.BackendNetns:
		links, ok := p.nss[f.Namespace]
		return !ok || !links[f.VXLANDevice]
	case configs.BackendVRF:
		return !p.links[f.Name] && !p.links[f.VXLANDevice]
	}
	return !p.links[f.VXLANDevice] && !p.links[f.Bridge]
}

// ensureDevices creates or adopts the devices of the standalone L2VNIs
// and then of every VRF. If any step fails, what this start created is
// removed again (VRFs and L2VNIs that did not exist before it; a VRF or
// L2VNI found in the kernel, such as a restarted evpnd's, is left as it
// was) and the error says what failed: a configuration mistake never
// leaves a half-programmed kernel.
func (d *Daemon) ensureDevices(ctx context.Context, h *netlink.Handle, mgr *vtep.Manager) error {
	if err := d.probeBackends(); err != nil {
		return fmt.Errorf("tenant VRFs: %w", err)
	}
	pre, err := d.observePreexisting(h)
	if err != nil {
		return fmt.Errorf("set up devices: %w", err)
	}
	if err := mgr.Ensure(ctx, d.standaloneVNIs()); err != nil {
		return fmt.Errorf("set up VXLAN devices: %w", err)
	}
	var done []configs.VRF
	for _, f := range d.cfg.VRFs {
		if err := mgr.EnsureVRF(ctx, d.vtepVRF(f)); err != nil {
			rb := d.rollbackStart(h, pre, mgr, done)
			if rb != nil {
				return errors.Join(fmt.Errorf("set up tenant VRF %s: %w", f.Name, err), fmt.Errorf("rollback incomplete: %w", rb))
			}
			return fmt.Errorf("set up tenant VRF %s: %w (the VRFs and L2VNIs this start had created were removed again)", f.Name, err)
		}
		done = append(done, f)
	}
	return nil
}

// rollbackStart removes the VRFs in done and the standalone L2VNIs that
// this start created.
func (d *Daemon) rollbackStart(h *netlink.Handle, pre preexisting, mgr *vtep.Manager, done []configs.VRF) error {
	ctx := context.Background()
	var errs []error
	var ports []string
	for i := len(done) - 1; i >= 0; i-- {
		f := done[i]
		if !pre.vrfIsNew(f) {
			continue
		}
		v := d.vtepVRF(f)
		if err := mgr.RemoveVRF(ctx, v); err != nil {
			errs = append(errs, err)
		}
		for _, m := range v.Members {
			ports = append(ports, m.L2.AccessPorts...)
		}
	}
	for _, v := range d.standaloneVNIs() {
		if pre.links[v.VXLAN] || pre.links[v.Bridge] {
			continue
		}
		if err := mgr.Remove(ctx, v); err != nil {
			errs = append(errs, err)
		}
		ports = append(ports, v.AccessPorts...)
	}
	// The released access ports are put down again if they were.
	for _, p := range ports {
		if !pre.down[p] {
			continue
		}
		if err := vtep.NodeOf(h).SetDown(p); err != nil && !errors.Is(err, vtep.ErrNoLink) {
			errs = append(errs, fmt.Errorf("put access port %s down again: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// openTenants opens every VRF of the config in force (openTenant). On
// error, what was opened is closed.
func (d *Daemon) openTenants(h *netlink.Handle) (ts []*tenant, err error) {
	for _, f := range d.cfg.VRFs {
		t, err := d.openTenant(h, d.cfg, f)
		if err != nil {
			for _, t := range ts {
				t.close()
			}
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// staticRoutes are the static routes of VRF f, as fib's route reconciler
// takes them: a next hop is used while it is on the subnet of an address
// whose link is up (the uplink's).
func staticRoutes(f configs.VRF) []fib.UnderlayRoute {
	var out []fib.UnderlayRoute
	for _, r := range f.Routes {
		out = append(out, fib.UnderlayRoute{Prefix: r.Prefix, NextHops: []netip.Addr{r.Via}})
	}
	return out
}

// openTenant opens VRF f of config c, whose devices exist: its namespace
// (netns backend), fib's L3 side, and on the netns backend fib's FDB
// kernel sides and the learner of its L2VNIs there. h is a handle in the
// underlay. On error, what was opened is closed.
func (d *Daemon) openTenant(h *netlink.Handle, c *configs.Config, f configs.VRF) (t *tenant, err error) {
	t = &tenant{cfg: f, v: d.vtepVRFOf(c, f), ns: vnetns.None(), l3: fib.NewL3Desired(d.l3Devices(c, f)),
		rewatch: make(chan struct{}, 1), advertise: configs.VRFAdvertisedPrefixes(f)}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	lh := h
	if t.inTenantNS() {
		if t.ns, err = vnetns.GetFromName(f.Namespace); err != nil {
			return nil, fmt.Errorf("vrf %s: open namespace %s: %w", f.Name, f.Namespace, err)
		}
		if t.h, err = netlink.NewHandleAt(t.ns); err != nil {
			return nil, fmt.Errorf("vrf %s: netlink in namespace %s: %w", f.Name, f.Namespace, err)
		}
		lh = t.h
		if t.fdb, err = fib.NewNetlinkKernel(t.ns); err != nil {
			return nil, fmt.Errorf("vrf %s: %w", f.Name, err)
		}
		if t.apiFDB, err = fib.NewNetlinkKernel(t.ns); err != nil {
			return nil, fmt.Errorf("vrf %s: %w", f.Name, err)
		}
		t.learner = vtep.NewLearner(t.ns, d.tenantVNIs(t), d.log.With("vrf", f.Name))
	}
	if t.l3k, err = fib.NewL3Netlink(lh, t.ns); err != nil {
		return nil, fmt.Errorf("vrf %s: %w", f.Name, err)
	}
	t.l3rec = fib.NewL3Reconciler(t.l3, t.l3k, d.log, fib.L3Config{OnApply: d.onL3Apply})
	if t.statics, err = fib.NewUnderlay(t.ns, fib.UnderlayConfig{Logger: d.log.With("vrf", f.Name, "routes", "static"),
		Table: d.l3Devices(c, f).Table, Protocol: fib.StaticProtocol, IPv6: true,
		LastResortDefault: f.Backend == configs.BackendDefault}); err != nil {
		return nil, fmt.Errorf("vrf %s: static routes: %w", f.Name, err)
	}
	if len(f.Routes) == 0 {
		// Without static routes the reconciler runs only to remove
		// those an earlier configuration left in the table.
		if left, err := t.statics.List(); err != nil || len(left) == 0 {
			t.statics.Close()
			t.statics = nil
			return t, nil
		}
	}
	t.statics.Set(staticRoutes(f))
	return t, nil
}

// tenantVNIs returns the member L2VNIs of t, as the learner of its
// namespace watches them.
func (d *Daemon) tenantVNIs(t *tenant) []vtep.L2VNI {
	var out []vtep.L2VNI
	for _, m := range t.v.Members {
		out = append(out, m.L2)
	}
	return out
}

// fdbKernel returns fib's FDB kernel side: one NetlinkKernel in the
// underlay and, per tenant namespace (netns backend), the tenant's (fdb,
// or apiFDB with api), each VNI's ops going to the namespace of its
// devices. Tenants come and go with add and drop.
func (d *Daemon) fdbKernel(ts []*tenant, api bool) (*muxKernel, error) {
	k := &muxKernel{api: api, byVNI: map[uint32]*fib.NetlinkKernel{}}
	var err error
	if k.under, err = fib.NewNetlinkKernel(vnetns.None()); err != nil {
		return nil, err
	}
	for _, t := range ts {
		k.add(t)
	}
	return k, nil
}

// muxKernel is fib's Kernel across namespaces: the FDB of a tenant's
// L2VNIs on the netns backend lives in the tenant's namespace, every other
// VNI's in the underlay's. Ops and dumps go to the namespace of their VNI.
type muxKernel struct {
	under *fib.NetlinkKernel
	api   bool // the tenants' apiFDB, not their fdb
	// mu guards byVNI; an op or a dump holds it (read) while it runs, so
	// that drop waits for them before the tenant's kernel side is closed.
	mu    sync.RWMutex
	byVNI map[uint32]*fib.NetlinkKernel
}

var _ fib.Kernel = (*muxKernel)(nil)

// add routes the ops of t's L2VNIs to its namespace (netns backend).
func (m *muxKernel) add(t *tenant) {
	k := t.fdb
	if m.api {
		k = t.apiFDB
	}
	if k == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range t.v.Members {
		m.byVNI[s.L2.VNI] = k
	}
}

// drop undoes add, once the ops under way are done.
func (m *muxKernel) drop(t *tenant) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range t.v.Members {
		delete(m.byVNI, s.L2.VNI)
	}
}

// Close closes the underlay's kernel side (the tenants close theirs).
func (m *muxKernel) Close() { m.under.Close() }

func (m *muxKernel) of(vni uint32) *fib.NetlinkKernel {
	if k, ok := m.byVNI[vni]; ok {
		return k
	}
	return m.under
}

// Dump implements fib.Kernel.
func (m *muxKernel) Dump(ctx context.Context, vnis []fib.VNIDevices) ([]fib.KernelEntry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.byVNI) == 0 {
		return m.under.Dump(ctx, vnis)
	}
	groups := map[*fib.NetlinkKernel][]fib.VNIDevices{}
	var order []*fib.NetlinkKernel
	for _, v := range vnis {
		k := m.of(v.VNI)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], v)
	}
	var out []fib.KernelEntry
	for _, k := range order {
		es, err := k.Dump(ctx, groups[k])
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// Apply implements fib.Kernel: ops keep their order within a namespace.
func (m *muxKernel) Apply(ctx context.Context, ops []fib.Op) []error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.byVNI) == 0 {
		return m.under.Apply(ctx, ops)
	}
	type group struct {
		ops []fib.Op
		idx []int
	}
	groups := map[*fib.NetlinkKernel]*group{}
	var order []*fib.NetlinkKernel
	for i, op := range ops {
		k := m.of(op.Entry.VNI)
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.ops = append(g.ops, op)
		g.idx = append(g.idx, i)
	}
	errs := make([]error, len(ops))
	for _, k := range order {
		g := groups[k]
		for j, err := range k.Apply(ctx, g.ops) {
			errs[g.idx[j]] = err
		}
	}
	return errs
}

// hostEvent is a local MAC+IP binding of a tenant VRF's SVIs for the
// loop, or (reset) the start of a new report of all of the VRF's.
type hostEvent struct {
	vrf   string
	vnis  []uint32 // reset: the VRF's member L2VNIs
	reset bool
	ev    vtep.HostEvent
}

// localHosts are the local MAC+IP bindings learned on the SVIs of the
// tenant VRFs (vtep.WatchHosts), the source of type-2 MAC+IP routes once
// the BGP side of L3 is wired (issue 10). The loop owns it.
type localHosts struct {
	gw    map[uint32]evpn.MAC // anycast gateway MAC per routed L2VNI
	hosts map[vtep.HostKey]evpn.MAC
}

func newLocalHosts(c *configs.Config) *localHosts {
	h := &localHosts{gw: map[uint32]evpn.MAC{}, hosts: map[vtep.HostKey]evpn.MAC{}}
	for _, f := range c.VRFs {
		for _, m := range f.L2VNIs {
			h.gw[m.VNI] = configs.MemberGatewayMAC(f, m)
		}
	}
	return h
}

// apply records e and reports whether the bindings changed. A binding
// with the anycast gateway MAC is never a host: another leaf's gateway
// answering a probe, or a misconfigured host, must not be advertised as
// an ordinary host (RFC 9135; DESIGN §3.2).
func (h *localHosts) apply(e hostEvent) bool {
	if e.reset {
		changed := false
		for _, vni := range e.vnis {
			for k := range h.hosts {
				if k.VNI == vni {
					delete(h.hosts, k)
					changed = true
				}
			}
		}
		return changed
	}
	k := e.ev.Key
	if e.ev.Removed {
		_, had := h.hosts[k]
		delete(h.hosts, k)
		return had
	}
	if gw, ok := h.gw[k.VNI]; ok && e.ev.MAC == gw {
		return false
	}
	if old, ok := h.hosts[k]; ok && old == e.ev.MAC {
		return false
	}
	h.hosts[k] = e.ev.MAC
	return true
}

// watchHosts reports the local MAC+IP bindings of t's SVIs to the loop
// until ctx ends: vtep.WatchHosts, started again after a failure (with
// backoff) and after a repair of the VRF's devices (a re-created SVI has
// a new index); each start first resets the VRF's bindings, then reports
// those the kernel holds.
func (l *leaf) watchHosts(ctx context.Context, t *tenant) error {
	svis := map[string]uint32{}
	gws := map[uint32][]netip.Addr{}
	var vnis []uint32
	for _, m := range t.v.Members {
		svis[m.L2.Bridge] = m.L2.VNI
		vnis = append(vnis, m.L2.VNI)
		for _, g := range m.GatewayIPs {
			gws[m.L2.VNI] = append(gws[m.L2.VNI], g.Addr())
		}
	}
	backoff := time.Duration(0)
	for {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		l.q.push(event{host: &hostEvent{vrf: t.cfg.Name, vnis: vnis, reset: true}})
		go func() {
			done <- vtep.WatchHosts(wctx, t.ns, svis, gws, func(e vtep.HostEvent) {
				l.q.push(event{host: &hostEvent{vrf: t.cfg.Name, ev: e}})
			})
		}()
		var err error
		rewatch := false
		select {
		case err = <-done:
			if err == nil && ctx.Err() == nil {
				err = errors.New("the watch ended")
			}
		case <-t.rewatch:
			rewatch = true
			cancel()
			<-done
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if rewatch {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		l.d.log.Warn("watch of local hosts failed; starting it again", "vrf", t.cfg.Name, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}
