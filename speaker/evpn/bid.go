package evpn

import "time"

// Outbid handles a local route BGP refused because its RIB holds a path
// for the MAC with sequence number seq, at least the local bid: possibly a
// path the table never held (the import rejected it, for example for its
// MPLS encapsulation). The local MAC is bid again one above seq and above
// every route present now, saturating at MaxSeq (a MAC whose bid
// saturates is flagged duplicate, as in LocalAdd).
func (t *Table) Outbid(vni uint32, mac MAC, seq uint32, now time.Time) []Effect {
	mk := MACKey{vni, mac}
	st := t.macs[mk]
	if st == nil || st.local == nil {
		return nil
	}
	top := max(seq, st.local.seq)
	for _, rc := range st.remote {
		top = max(top, rc.seq)
	}
	return t.rebid(mk, st, top, now)
}

// RebidLocal bids every local MAC that a remote route present now matches
// or outbids again, one above the highest such route, saturating as
// Outbid. A
// restarted leaf calls it once its initial table is in: its local MACs
// were learned (at sequence 0) before it knew the fabric's routes.
func (t *Table) RebidLocal(now time.Time) []Effect {
	var eff []Effect
	for mk, st := range t.macs {
		if st.local == nil || len(st.remote) == 0 {
			continue
		}
		top := uint32(0)
		for _, rc := range st.remote {
			top = max(top, rc.seq)
		}
		if top < st.local.seq {
			continue
		}
		eff = append(eff, t.rebid(mk, st, top, now)...)
	}
	return eff
}

func (t *Table) rebid(mk MACKey, st *macState, top uint32, now time.Time) []Effect {
	saturated := top == MaxSeq
	if !saturated {
		top++
	}
	st.local.seq = top
	st.local.advertised = false
	eff := t.reselect(mk, st, now)
	if saturated {
		eff = append(eff, t.flagDuplicate(mk, st, "the local bid is at the maximum MAC mobility sequence number")...)
	}
	return eff
}
