package lab

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// NodeStatus is what Inspect reports for one node.
type NodeStatus struct {
	Node       string        `json:"node"`
	Namespace  string        `json:"namespace"`
	Deployed   bool          `json:"deployed"` // namespace exists
	Cmd        string        `json:"cmd,omitempty"`
	PID        int           `json:"pid,omitempty"` // running cmd; 0 when none
	Running    bool          `json:"running"`
	Log        string        `json:"log,omitempty"`
	PIDs       []int         `json:"pids,omitempty"` // every process in the namespace
	Interfaces []IfaceStatus `json:"interfaces,omitempty"`
}

// IfaceStatus is one interface of a node.
type IfaceStatus struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind,omitempty"`
	MAC   string   `json:"mac,omitempty"`
	Up    bool     `json:"up"`
	MTU   int      `json:"mtu"`
	Addrs []string `json:"addrs,omitempty"` // without IPv6 link-local and loopback defaults
}

// Inspect reports every node's namespace, cmd state, processes and
// interfaces, in topology order.
func (l *Lab) Inspect() ([]NodeStatus, error) {
	var (
		out  []NodeStatus
		errs []error
	)
	for _, n := range l.topo.Nodes {
		st := NodeStatus{Node: n.Name, Namespace: l.Namespace(n.Name), Cmd: n.Cmd, PID: l.PID(n.Name)}
		st.Running = st.PID != 0
		if n.Cmd != "" {
			st.Log = l.LogPath(n.Name)
		}
		if ns := l.Node(n.Name); ns != nil {
			st.Deployed = true
			pids, err := netnsPIDs(ns.Name)
			if err != nil {
				errs = append(errs, err)
			}
			st.PIDs = pids
			ifs, err := l.interfaces(n.Name)
			if err != nil {
				errs = append(errs, err)
			}
			st.Interfaces = ifs
		}
		out = append(out, st)
	}
	return out, errors.Join(errs...)
}

func (l *Lab) interfaces(node string) ([]IfaceStatus, error) {
	ns := l.Node(node)
	h, err := ns.Handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("node %s: list links: %w", node, err)
	}
	var out []IfaceStatus
	for _, lk := range links {
		a := lk.Attrs()
		is := IfaceStatus{Name: a.Name, Kind: lk.Type(), Up: a.Flags&net.FlagUp != 0, MTU: a.MTU}
		if len(a.HardwareAddr) > 0 {
			is.MAC = a.HardwareAddr.String()
		}
		addrs, err := h.AddrList(lk, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("node %s: list addresses of %s: %w", node, a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() || ad.IP.IsLoopback() {
				continue
			}
			is.Addrs = append(is.Addrs, ad.IPNet.String())
		}
		if a.Name == "lo" && len(is.Addrs) == 0 {
			continue
		}
		out = append(out, is)
	}
	return out, nil
}
