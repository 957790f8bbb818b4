package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// badLeaf is a valid leaf config of the namespace the test makes (VTEP
// 10.0.0.9 on lo); the cases below spoil it.
const badLeaf = `router-id: 10.0.0.9
asn: 65000
bgp:
  listen-addresses: [10.0.0.9]
neighbors:
  - address: 10.0.0.254
    asn: 65000
l2vnis:
  - vni: 100
`

// TestRunRefusesBadConfigs: `evpnd run` refuses each bad config of issue
// 12 in a fresh namespace, with an error that names the problem, bounded
// output, and no link added or changed. configs.TestBadConfigs checks the
// same kinds of file, and more, through Load.
func TestRunRefusesBadConfigs(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	netns.RequireLinkKind(t, "bridge")
	bin := evpndPath(t)
	var dups strings.Builder
	dups.WriteString(badLeaf)
	for range 30000 {
		dups.WriteString("  - vni: 100\n")
	}
	cases := []struct {
		name, config string
		want         []string
	}{
		{"explicit zero duplicate-window", badLeaf + "mac-mobility:\n  duplicate-window: 0s\n",
			[]string{"line 11: mac-mobility.duplicate-window: 0s: must be positive"}},
		{"bare zero duration", strings.Replace(badLeaf, "bgp:\n", "bgp:\n  hold-time: 0\n", 1),
			[]string{`line 4: bgp.hold-time: "0": a number alone is not a duration: write it with a unit, such as 0s`}},
		{"unknown key and bad value", strings.Replace(badLeaf, "  - vni: 100\n", "  - vni: 100\n    acess-interfaces: [eth1]\n  - vni: 100\n", 1),
			[]string{"2 problems", `l2vnis[0].acess-interfaces: unknown key "acess-interfaces" (did you mean "access-interfaces"?)`, "l2vnis[1].vni: 100: already configured by l2vnis[0]"}},
		{"binary", "\x7fELF\x02\x01\x01\x00",
			[]string{"not a text file: byte 0x7f at offset 0 (line 1, column 1) is a control character"}},
		{"10 MB", badLeaf + "# " + strings.Repeat("x", 10<<20) + "\n",
			[]string{"bytes, over the size limit of 1048576 bytes (1 MiB)"}},
		{"30,000 duplicate VNIs", dups.String(),
			[]string{"30000 problems", "... and 29950 more problems, not shown"}},
		{"API beyond loopback without client-ca", badLeaf + "api:\n  listen: 0.0.0.0:50051\n  tls: {cert: /c.pem, key: /k.pem}\n",
			[]string{"api.listen: 0.0.0.0:50051: reachable beyond loopback without TLS client certificates", "api.tls.client-ca"}},
		{"vtep-ip on no interface", strings.Replace(badLeaf, "asn: 65000\n", "asn: 65000\nvtep-ip: 10.0.0.77\n", 1),
			[]string{"missing on this node: address 10.0.0.77"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := netns.ForTest(t, "e2ebad")
			if _, err := ns.Exec(t.Context(), "ip", "addr", "add", "10.0.0.9/32", "dev", "lo"); err != nil {
				t.Fatal(err)
			}
			before := linkSnapshot(t, ns)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "evpnd.yaml")
			if err := os.WriteFile(cfg, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}

			out, code, took := runRefused(t, ns, bin, cfg, filepath.Join(dir, "evpnd.sock"))
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not contain %q:\n%.3000s", w, out)
				}
			}
			if n := len(out); n > 20000 {
				t.Errorf("%d bytes of output", n)
			}
			t.Logf("exit %d after %v, %d bytes of output", code, took, len(out))
			if after := linkSnapshot(t, ns); after != before {
				t.Errorf("links changed by a refused start:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
