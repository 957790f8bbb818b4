package configs

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// api checks the api and metrics sections.
func (v *validator) api() {
	a, ps := v.c.API, v.ps
	if !filepath.IsAbs(a.Socket) {
		ps.add("api.socket", quote(a.Socket), "must be an absolute path, such as %s (the default)", DefaultAPISocket)
	}
	if strings.TrimSpace(a.SocketGroup) != a.SocketGroup {
		ps.add("api.socket-group", quote(a.SocketGroup), "has spaces: write the group name or GID alone")
	}
	if strings.TrimSpace(a.AdminGroup) != a.AdminGroup {
		ps.add("api.admin-group", quote(a.AdminGroup), "has spaces: write the group name or GID alone")
	}
	if a.AdminGroup != "" && a.SocketGroup == "" {
		ps.add("api.admin-group", quote(a.AdminGroup), "needs api.socket-group: without it the socket is root's alone (mode 0600) and no group member can reach it; set api.socket-group (admin-group members must be in it too) or remove api.admin-group")
	}
	tlsOn := a.TLS.Cert != "" || a.TLS.Key != ""
	if (a.TLS.Cert == "") != (a.TLS.Key == "") {
		ps.add("api.tls", "", "set both cert and key (PEM files), or neither")
	}
	if a.TLS.ClientCA != "" && !tlsOn {
		ps.add("api.tls.client-ca", short(a.TLS.ClientCA), "needs api.tls.cert and api.tls.key: client certificates are only checked over TLS")
	}
	if tlsOn && a.Listen == "" {
		ps.add("api.tls", "", "set without api.listen: TLS applies to the TCP listener only; set api.listen or remove api.tls")
	}
	if a.Listen != "" {
		if host, ok := hostPort(ps, "api.listen", a.Listen, "127.0.0.1:50051"); ok && a.TLS.ClientCA == "" && !IsLoopbackHost(host) {
			ps.add("api.listen", short(a.Listen), "reachable beyond loopback without TLS client certificates, which would let anyone on the network use the API: set api.tls.client-ca (only clients with a certificate it signed get in) with api.tls.cert and api.tls.key, or bind 127.0.0.1")
		}
	}
	if a.GoBGPListen != "" {
		if host, ok := hostPort(ps, "api.gobgp-listen", a.GoBGPListen, "127.0.0.1:50052"); ok && (host == "localhost" || !IsLoopbackHost(host)) {
			ps.add("api.gobgp-listen", short(a.GoBGPListen), "must be a loopback address literal such as 127.0.0.1:50052: GoBGP's API has no authentication")
		}
	}
	if a.Listen != "" && a.Listen == a.GoBGPListen {
		ps.add("api.gobgp-listen", short(a.GoBGPListen), "same address as api.listen: use another port")
	}
	if m := v.c.Metrics.Listen; m != "" {
		hostPort(ps, "metrics.listen", m, "127.0.0.1:9273")
		if m == a.Listen || m == a.GoBGPListen {
			ps.add("metrics.listen", short(m), "same address as an api listener: use another port")
		}
	}
}

// hostPort checks a host:port value and returns its host.
func hostPort(ps *problems, path, s, example string) (string, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		ps.add(path, quote(s), "not host:port: write for example %s", example)
		return "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ps.add(path, quote(s), "bad port %q: use 1-65535, for example %s", cutString(port), example)
		return "", false
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			ps.add(path, quote(s), "host %q is not an IP address: write an address of this node, for example %s", cutString(host), example)
			return "", false
		}
	}
	return host, true
}

// IsLoopbackHost reports whether host (as in host:port) only reaches this
// node: "localhost", 127.0.0.0/8 or ::1. An empty host or an unspecified
// address listens on every interface and is not loopback.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// WithL2VNI returns a copy of c (which has its defaults applied) with v
// added to l2vnis and defaulted, after checking the result exactly as a
// config file holding it would be checked. On error (a *ValidationError
// whose paths name l2vnis[N], N = len(c.L2VNIs)) c is unchanged.
func (c *Config) WithL2VNI(v L2VNI) (*Config, error) {
	cc := *c
	cc.Neighbors = slices.Clone(c.Neighbors)
	cc.DynamicNeighbors = slices.Clone(c.DynamicNeighbors)
	cc.L2VNIs = append(slices.Clone(c.L2VNIs), v)
	// The names and RD given are the caller's, not defaults: say so in
	// problems ("is already used", not "the default value is"). Line 0: in
	// no file.
	// (Without lines, as for a Config built in code, nothing is called a
	// default.)
	if c.lines != nil {
		cc.lines = maps.Clone(c.lines)
		p := fmt.Sprintf("l2vnis[%d]", len(c.L2VNIs))
		for key, val := range map[string]string{"vxlan-device": v.VXLANDevice, "bridge": v.Bridge, "rd": v.RD} {
			if val != "" {
				cc.lines[p+"."+key] = 0
			}
		}
	}
	if err := cc.Validate(); err != nil {
		return nil, err
	}
	cc.ApplyDefaults()
	return &cc, nil
}

// WithoutL2VNI returns a copy of c without the L2VNI vni, and whether c had it.
func (c *Config) WithoutL2VNI(vni uint32) (*Config, bool) {
	i := slices.IndexFunc(c.L2VNIs, func(v L2VNI) bool { return v.VNI == vni })
	if i < 0 {
		return c, false
	}
	cc := *c
	cc.L2VNIs = slices.Delete(slices.Clone(c.L2VNIs), i, i+1)
	// The file's record of each entry moves with it: the lines in
	// messages, and which values it set explicitly (else an entry added
	// later at a freed index would inherit another's explicit fields).
	// l2vnis[i]'s paths go; those of the later entries move down by one.
	to := func(j int) (int, bool) {
		if j > i {
			return j - 1, true
		}
		return j, j < i
	}
	cc.lines = moveL2VNIPaths(c.lines, to)
	cc.explicit = moveL2VNIPaths(c.explicit, to)
	return &cc, true
}
