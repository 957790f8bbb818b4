package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// TestTenantsModel checks, without root, that the tenants lab and the
// table TestTwoTenants works from agree: every host's VNI, MAC, IPv4
// address and leaf as the topology sets them, each host of tenant A with
// a twin of tenant B at the same leaf (hm's at its first one) with the
// same MAC and addresses, and every leaf with both tenants' VRFs.
func TestTenantsModel(t *testing.T) {
	topo, err := lab.Load(tenantsFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Warnings) > 0 {
		t.Errorf("topology warnings:\n%s", strings.Join(topo.Warnings, "\n"))
	}
	m, err := loadModel(topo)
	if err != nil {
		t.Fatal(err)
	}
	at := m.initial()
	if len(m.Hosts) != len(tenantHosts) {
		t.Errorf("topology has %d hosts, the test's table %d", len(m.Hosts), len(tenantHosts))
	}
	for _, h := range tenantHosts {
		mh := m.host(h.name)
		if mh == nil {
			t.Errorf("no host %s in %s", h.name, tenantsFile)
			continue
		}
		if mh.VNI != h.vni || mh.MAC != h.mac || mh.IP.String() != h.ips[0] {
			t.Errorf("%s: topology has VNI %d MAC %s IP %s, the table VNI %d MAC %s IP %s", h.name, mh.VNI, mh.MAC, mh.IP, h.vni, h.mac, h.ips[0])
		}
		if !h.tenant.ownsVNI(h.vni) {
			t.Errorf("%s: VNI %d is not tenant %s's", h.name, h.vni, h.tenant.name)
		}
		if h.tenant != tenantA {
			continue
		}
		twin := tenantHosts[len(tenantHosts)/2+slices.Index(tenantHosts, h)]
		if twin.tenant != tenantB || twin.mac != h.mac || strings.Join(twin.ips[:2], " ") != strings.Join(h.ips[:2], " ") || at[twin.name].Leaf != at[h.name].Leaf {
			t.Errorf("%s (at %s) and %s (at %s): not twins", h.name, at[h.name], twin.name, at[twin.name])
		}
	}
	for _, lf := range m.Leafs {
		for _, tn := range labTenants {
			for _, v := range tn.vnis {
				if _, ok := lf.VNIs[v]; !ok {
					t.Errorf("%s lacks tenant %s's L2VNI %d", lf.Name, tn.name, v)
				}
			}
		}
		if tenantVTEP[lf.Name] != lf.VTEP.String() {
			t.Errorf("%s: VTEP %s, the test says %s", lf.Name, lf.VTEP, tenantVTEP[lf.Name])
		}
	}
}
