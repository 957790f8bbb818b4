package speaker

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// frrRecord is one message of testdata/frr-8.4-evpn-updates.txt: the
// comment an independent script wrote for it, and the message bytes.
type frrRecord struct {
	line    int
	comment string
	msg     []byte
}

func loadFRR(t testing.TB) []frrRecord {
	t.Helper()
	f, err := os.Open("testdata/frr-8.4-evpn-updates.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []frrRecord
	var comment string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			comment = strings.TrimSpace(strings.TrimPrefix(line, "#"))
		default:
			b, err := hex.DecodeString(line)
			if err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
			recs = append(recs, frrRecord{line: n, comment: comment, msg: b})
			comment = ""
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("no messages in testdata")
	}
	return recs
}

// frrExpect is what a comment line says about its message.
type frrExpect struct {
	from, to netip.Addr
	withdraw bool
	route    evpn.Route
}

// parseFRRComment turns a comment such as
//
//	l2vni 10.1.1.1 -> 10.1.1.0: MP_REACH afi=25 safi=70 nh=10.0.0.1 | type-3 rd=10.0.0.1:2 tag=0 orig=10.0.0.1 | EXTCOMM ET:8 RT:65000:100 | PMSI flags=0 type=6 label=100 endpoint=10.0.0.1
//
// into the route it describes. Every field it does not mention is zero.
func parseFRRComment(c string) (frrExpect, error) {
	var e frrExpect
	head, body, ok := strings.Cut(c, ": ")
	if !ok {
		return e, fmt.Errorf("no ': ' in %q", c)
	}
	hf := strings.Fields(head) // l2vni FROM -> TO
	if len(hf) != 4 || hf[2] != "->" {
		return e, fmt.Errorf("bad direction %q", head)
	}
	var err error
	if e.from, err = netip.ParseAddr(hf[1]); err != nil {
		return e, err
	}
	if e.to, err = netip.ParseAddr(hf[3]); err != nil {
		return e, err
	}
	body = strings.ReplaceAll(body, ", ", ",") // labels=[100, 4001]
	r := &e.route
	for _, seg := range strings.Split(body, " | ") {
		f := strings.Fields(seg)
		if len(f) == 0 {
			return e, fmt.Errorf("empty segment in %q", c)
		}
		kv := map[string]string{}
		for _, tok := range f[1:] {
			if k, v, ok := strings.Cut(tok, "="); ok {
				kv[k] = v
			}
		}
		switch {
		case f[0] == "MP_REACH" || f[0] == "MP_UNREACH":
			e.withdraw = f[0] == "MP_UNREACH"
			if kv["afi"] != "25" || kv["safi"] != "70" {
				return e, fmt.Errorf("not l2vpn-evpn: %q", seg)
			}
			if nh, ok := kv["nh"]; ok {
				if r.NextHop, err = netip.ParseAddr(nh); err != nil {
					return e, err
				}
			}
		case strings.HasPrefix(f[0], "type-"):
			if err := parseFRRRoute(r, f[0], kv); err != nil {
				return e, fmt.Errorf("%q: %w", seg, err)
			}
		case f[0] == "EXTCOMM":
			for _, tok := range f[1:] {
				if err := parseFRRExtComm(r, tok); err != nil {
					return e, err
				}
			}
		case f[0] == "PMSI":
			p := &evpn.PMSI{}
			for k, dst := range map[string]*uint32{"label": &p.Label} {
				v, err := strconv.ParseUint(kv[k], 10, 32)
				if err != nil {
					return e, fmt.Errorf("PMSI %s: %w", k, err)
				}
				*dst = uint32(v)
			}
			for k, dst := range map[string]*uint8{"flags": &p.Flags, "type": &p.Type} {
				v, err := strconv.ParseUint(kv[k], 10, 8)
				if err != nil {
					return e, fmt.Errorf("PMSI %s: %w", k, err)
				}
				*dst = uint8(v)
			}
			if p.Endpoint, err = netip.ParseAddr(kv["endpoint"]); err != nil {
				return e, err
			}
			r.PMSI = p
		default:
			return e, fmt.Errorf("unknown segment %q", seg)
		}
	}
	return e, nil
}

func parseFRRRoute(r *evpn.Route, typ string, kv map[string]string) error {
	var err error
	switch typ {
	case "type-2":
		r.Type = evpn.RouteTypeMACIP
	case "type-3":
		r.Type = evpn.RouteTypeIMET
	case "type-5":
		r.Type = evpn.RouteTypeIPPrefix
	default:
		return fmt.Errorf("route type %s", typ)
	}
	if r.RD, err = evpn.ParseRD(kv["rd"]); err != nil {
		return err
	}
	tag, err := strconv.ParseUint(kv["tag"], 10, 32)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	r.EthTag = uint32(tag)
	if v, ok := kv["mac"]; ok {
		if r.MAC, err = evpn.ParseMAC(v); err != nil {
			return err
		}
	}
	for _, k := range []string{"ip", "orig"} {
		if v, ok := kv[k]; ok && v != "-" {
			if r.IP, err = netip.ParseAddr(v); err != nil {
				return err
			}
		}
	}
	if v, ok := kv["prefix"]; ok {
		if r.Prefix, err = netip.ParsePrefix(v); err != nil {
			return err
		}
	}
	if v, ok := kv["gw"]; ok {
		gw, err := netip.ParseAddr(v)
		if err != nil {
			return err
		}
		if !gw.IsUnspecified() { // the decoder keeps a zero gateway unset
			r.GatewayIP = gw
		}
	}
	if v, ok := kv["labels"]; ok {
		for _, s := range strings.Split(strings.Trim(v, "[]"), ",") {
			l, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return fmt.Errorf("labels: %w", err)
			}
			r.Labels = append(r.Labels, uint32(l))
		}
	}
	if v, ok := kv["label"]; ok {
		l, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("label: %w", err)
		}
		r.Labels = []uint32{uint32(l)}
	}
	return nil
}

func parseFRRExtComm(r *evpn.Route, tok string) error {
	kind, val, ok := strings.Cut(tok, ":")
	if !ok {
		return fmt.Errorf("extended community %q", tok)
	}
	switch kind {
	case "ET":
		v, err := strconv.ParseUint(val, 10, 16)
		if err != nil {
			return err
		}
		r.Encap = uint16(v)
	case "RT":
		rt, err := evpn.ParseRT(val)
		if err != nil {
			return err
		}
		r.RTs = append(r.RTs, rt)
	case "Rmac":
		mac, err := evpn.ParseMAC(val)
		if err != nil {
			return err
		}
		r.RouterMAC, r.HasRMAC = mac, true
	default:
		return fmt.Errorf("unknown extended community %q", tok)
	}
	return nil
}

// rawAttr is one path attribute as found on the wire by rawAttrs, an
// independent walker used as an oracle next to GoBGP's parser.
type rawAttr struct {
	flags, typ byte
	value      []byte
}

func rawAttrs(t testing.TB, msg []byte) []rawAttr {
	t.Helper()
	const hdr = 19
	if len(msg) < hdr+4 || msg[18] != 2 {
		t.Fatalf("not an UPDATE: % x", msg)
	}
	b := msg[hdr:]
	wlen := int(binary.BigEndian.Uint16(b))
	b = b[2+wlen:]
	alen := int(binary.BigEndian.Uint16(b))
	b = b[2 : 2+alen]
	var out []rawAttr
	for len(b) > 0 {
		flags, typ := b[0], b[1]
		var l, off int
		if flags&0x10 != 0 {
			l, off = int(binary.BigEndian.Uint16(b[2:])), 4
		} else {
			l, off = int(b[2]), 3
		}
		out = append(out, rawAttr{flags: flags, typ: typ, value: b[off : off+l]})
		b = b[off+l:]
	}
	return out
}

func findAttr(attrs []rawAttr, typ byte) (rawAttr, bool) {
	for _, a := range attrs {
		if a.typ == typ {
			return a, true
		}
	}
	return rawAttr{}, false
}

const (
	attrOrigin       = 1
	attrASPath       = 2
	attrMED          = 4
	attrLocalPref    = 5
	attrOriginatorID = 9
	attrClusterList  = 10
	attrMPReach      = 14
	attrMPUnreach    = 15
	attrExtComm      = 16
	attrPMSI         = 22
)
