//go:build !linux

package vtep

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// errUnsupported is returned on platforms without Linux bridges and VXLAN.
var errUnsupported = errors.New("vtep: VXLAN and bridge devices need Linux")

// Manager is a stub outside Linux; every method fails.
type Manager struct{}

// NewManager returns a stub outside Linux.
func NewManager(h *netlink.Handle, ns netns.NsHandle, log *slog.Logger) *Manager { return &Manager{} }

// Ensure fails outside Linux.
func (m *Manager) Ensure(ctx context.Context, vnis []L2VNI) error { return errUnsupported }

// Remove fails outside Linux.
func (m *Manager) Remove(ctx context.Context, vni L2VNI) error { return errUnsupported }

// RemoveAll fails outside Linux.
func (m *Manager) RemoveAll(ctx context.Context, vnis []L2VNI) []error {
	out := make([]error, len(vnis))
	for i := range out {
		out[i] = errUnsupported
	}
	return out
}

// Learner is a stub outside Linux; Run and Dump fail.
type Learner struct{}

// NewLearner returns a stub outside Linux.
func NewLearner(ns netns.NsHandle, vnis []L2VNI, log *slog.Logger) *Learner { return &Learner{} }

// SetVNIs does nothing outside Linux.
func (l *Learner) SetVNIs(vnis []L2VNI) {}

// Run fails outside Linux.
func (l *Learner) Run(ctx context.Context, out func(MACEvent)) error { return errUnsupported }

// OnForeignVXLAN does nothing outside Linux.
func (l *Learner) OnForeignVXLAN(fn func(VXLANChange)) {}

// Dump fails outside Linux.
func (l *Learner) Dump(ctx context.Context) (map[MACKey]LocalMAC, error) { return nil, errUnsupported }

// Supervise fails outside Linux.
func (m *Manager) Supervise(ctx context.Context, onRepair func(Repair)) error { return errUnsupported }

// Underlay is the interface a VXLAN device's packets leave by.
type Underlay struct {
	Dev string
	MTU int
	Via string
}

// UnderlayMTU fails outside Linux.
func UnderlayMTU(h *netlink.Handle, local netip.Addr, towards []netip.Addr) (Underlay, error) {
	return Underlay{}, errUnsupported
}
