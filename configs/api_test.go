package configs

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAPI(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		path   string // "" = valid
		want   string
	}{
		{"defaults", func(c *Config) {}, "", ""},
		{"loopback TCP without TLS", func(c *Config) { c.API.Listen = "127.0.0.1:50051" }, "", ""},
		{"localhost TCP without TLS", func(c *Config) { c.API.Listen = "localhost:50051" }, "", ""},
		{"IPv6 loopback", func(c *Config) { c.API.Listen = "[::1]:50051" }, "", ""},
		{"TLS beyond loopback", func(c *Config) {
			c.API.Listen = "0.0.0.0:50051"
			c.API.TLS = APITLS{Cert: "/etc/evpnd/c.pem", Key: "/etc/evpnd/k.pem", ClientCA: "/etc/evpnd/ca.pem"}
		}, "", ""},
		{"any address without TLS", func(c *Config) { c.API.Listen = "0.0.0.0:50051" }, "api.listen", "without TLS client certificates"},
		{"empty host without TLS", func(c *Config) { c.API.Listen = ":50051" }, "api.listen", "without TLS client certificates"},
		{"TLS beyond loopback without client-ca", func(c *Config) {
			c.API.Listen = "0.0.0.0:50051"
			c.API.TLS = APITLS{Cert: "/etc/evpnd/c.pem", Key: "/etc/evpnd/k.pem"}
		}, "api.listen", "set api.tls.client-ca"},
		{"TLS on loopback without client-ca", func(c *Config) {
			c.API.Listen = "127.0.0.1:50051"
			c.API.TLS = APITLS{Cert: "/etc/evpnd/c.pem", Key: "/etc/evpnd/k.pem"}
		}, "", ""},
		{"admin group", func(c *Config) { c.API.SocketGroup, c.API.AdminGroup = "netops", "netadmin" }, "", ""},
		{"admin group without socket group", func(c *Config) { c.API.AdminGroup = "netadmin" }, "api.admin-group", "needs api.socket-group"},
		{"admin group with spaces", func(c *Config) { c.API.SocketGroup, c.API.AdminGroup = "netops", " netadmin" }, "api.admin-group", "has spaces"},
		{"routable address without TLS", func(c *Config) { c.API.Listen = "10.0.0.1:50051" }, "api.listen", "bind 127.0.0.1"},
		{"not host:port", func(c *Config) { c.API.Listen = "50051" }, "api.listen", "not host:port"},
		{"hostname", func(c *Config) { c.API.Listen = "leaf1:50051" }, "api.listen", "not an IP address"},
		{"cert without key", func(c *Config) {
			c.API.Listen = "127.0.0.1:1"
			c.API.TLS.Cert = "/c.pem"
		}, "api.tls", "both cert and key"},
		{"client CA without TLS", func(c *Config) { c.API.TLS.ClientCA = "/ca.pem" }, "api.tls.client-ca", "needs api.tls.cert"},
		{"TLS without listener", func(c *Config) { c.API.TLS = APITLS{Cert: "/c", Key: "/k"} }, "api.tls", "without api.listen"},
		{"relative socket", func(c *Config) { c.API.Socket = "evpnd.sock" }, "api.socket", "absolute path"},
		{"gobgp loopback", func(c *Config) { c.API.GoBGPListen = "127.0.0.1:50052" }, "", ""},
		{"gobgp beyond loopback", func(c *Config) { c.API.GoBGPListen = "0.0.0.0:50052" }, "api.gobgp-listen", "loopback"},
		{"gobgp same as api", func(c *Config) { c.API.Listen, c.API.GoBGPListen = "127.0.0.1:5", "127.0.0.1:5" }, "api.gobgp-listen", "same address"},
		{"metrics", func(c *Config) { c.Metrics.Listen = "0.0.0.0:9273" }, "", ""},
		{"metrics bad", func(c *Config) { c.Metrics.Listen = "0.0.0.0" }, "metrics.listen", "not host:port"},
		{"metrics bad port", func(c *Config) { c.Metrics.Listen = "127.0.0.1:99999" }, "metrics.listen", "bad port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validLeaf()
			tc.mutate(c)
			err := c.Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError naming %s, got %v", tc.path, err)
			}
			for _, p := range ve.Problems {
				if p.Path == tc.path && strings.Contains(p.Reason, tc.want) {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q in:\n%v", tc.path, tc.want, err)
		})
	}
}

func TestParseAPISection(t *testing.T) {
	c, err := Parse([]byte(`router-id: 10.0.0.1
asn: 65000
neighbors: [{address: 10.0.0.254, asn: 65000}]
api:
  socket: /run/evpnd/leaf1.sock
  socket-group: evpnd
  listen: 127.0.0.1:50051
  gobgp-listen: 127.0.0.1:50052
metrics:
  listen: 127.0.0.1:9273
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Socket != "/run/evpnd/leaf1.sock" || c.API.SocketGroup != "evpnd" || c.API.Listen != "127.0.0.1:50051" ||
		c.API.GoBGPListen != "127.0.0.1:50052" || c.Metrics.Listen != "127.0.0.1:9273" {
		t.Fatalf("parsed %+v %+v", c.API, c.Metrics)
	}
	_, err = Parse([]byte("router-id: 10.0.0.1\nasn: 65000\nneighbors: [{address: 10.0.0.254, asn: 65000}]\napi:\n  sockt: /x\n"), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "api.sockt") || !strings.Contains(err.Error(), "socket") {
		t.Fatalf("misspelled key: %v", err)
	}
}

func TestWithL2VNI(t *testing.T) {
	c := validLeaf()
	c.ApplyDefaults()
	n, err := c.WithL2VNI(L2VNI{VNI: 300, AccessInterfaces: []string{"eth3"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.L2VNIs) != 2 || len(n.L2VNIs) != 3 {
		t.Fatalf("original changed or copy wrong: %d %d", len(c.L2VNIs), len(n.L2VNIs))
	}
	if v := n.L2VNIs[2]; v.VXLANDevice != "vxlan300" || v.Bridge != "br300" || v.RD != "10.0.0.1:300" || v.UDPPort != 4789 {
		t.Fatalf("defaults not applied: %+v", v)
	}
	// Conflicts with existing entries are reported on the new entry.
	_, err = c.WithL2VNI(L2VNI{VNI: 300, Bridge: "br200", AccessInterfaces: []string{"eth1"}})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	paths := map[string]bool{}
	for _, p := range ve.Problems {
		paths[p.Path] = true
	}
	for _, p := range []string{"l2vnis[2].bridge", "l2vnis[2].access-interfaces[0]"} {
		if !paths[p] {
			t.Errorf("no problem at %s in %v", p, err)
		}
	}
	if _, err := c.WithL2VNI(L2VNI{VNI: 100}); err == nil || !strings.Contains(err.Error(), "l2vnis[2].vni") {
		t.Errorf("duplicate VNI: %v", err)
	}
	if len(c.L2VNIs) != 2 {
		t.Fatal("original changed")
	}
	d, ok := n.WithoutL2VNI(100)
	if !ok || len(d.L2VNIs) != 2 || d.L2VNIs[0].VNI != 200 || len(n.L2VNIs) != 3 {
		t.Fatalf("WithoutL2VNI: %v %+v", ok, d.L2VNIs)
	}
	if _, ok := n.WithoutL2VNI(999); ok {
		t.Fatal("removed a VNI that is not there")
	}
}
