package evpn

// ImportRule says which route targets import routes into one VNI.
type ImportRule struct {
	VNI uint32
	// Auto imports any 2-octet-AS route target whose value is the VNI
	// (never an IPv4 or 4-octet-AS one: their value has 16 bits),
	// whatever its ASN: in an eBGP fabric each leaf has its own ASN, and FRR
	// matches auto RTs the same way.
	Auto bool
	// RTs are explicit import route targets, matched exactly. They are used
	// when Auto is false.
	RTs []RT
}

// Importer maps a received route to a local VNI by its route targets
// (RFC 7432 §7.10: import is by RT, never by label or RD).
type Importer struct {
	exact map[RT][]uint32
	auto  map[uint32]bool
}

// NewImporter builds an importer for the given rules.
func NewImporter(rules []ImportRule) *Importer {
	im := &Importer{exact: map[RT][]uint32{}, auto: map[uint32]bool{}}
	for _, r := range rules {
		if r.Auto {
			im.auto[r.VNI] = true
			continue
		}
		for _, rt := range r.RTs {
			im.exact[rt] = append(im.exact[rt], r.VNI)
		}
	}
	return im
}

// VNIFor returns the local VNI a route imports into. When several VNIs
// match, the one equal to the route's label wins (with VXLAN the label is
// the VNI, RFC 8365), else the first match in the route's RT order.
func (im *Importer) VNIFor(r *Route) (uint32, bool) {
	label := r.L2VNI()
	var first uint32
	found := false
	consider := func(v uint32) bool {
		if v == label {
			first, found = v, true
			return true
		}
		if !found {
			first, found = v, true
		}
		return false
	}
	for _, rt := range r.RTs {
		for _, v := range im.exact[rt] {
			if consider(v) {
				return first, true
			}
		}
		if !rt.IPv4 && !rt.AS4 && im.auto[rt.Value] {
			if consider(rt.Value) {
				return first, true
			}
		}
	}
	return first, found
}
