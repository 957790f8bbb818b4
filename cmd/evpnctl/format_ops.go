package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// writeCheck prints every drift between BGP's selection and the kernel,
// then a summary line.
func writeCheck(w io.Writer, resp *evpndv1.CheckResponse, loc *time.Location) error {
	b := bufio.NewWriter(w)
	drifts := resp.GetDrifts()
	counts := map[string]int{}
	if len(drifts) > 0 {
		tw := newTab(b)
		// Layer-3 drift names a VRF and an entry (an IP, a prefix or a
		// router MAC) where L2 drift has a VNI and a MAC.
		l3 := false
		for _, d := range drifts {
			l3 = l3 || d.GetVrf() != ""
		}
		if l3 {
			tabLine(tw, "Kind", "VNI/VRF", "Table", "MAC/Entry", "Want VTEP", "Kernel VTEP", "Device", "Detail")
		} else {
			tabLine(tw, "Kind", "VNI", "Table", "MAC", "Want VTEP", "Kernel VTEP", "Device", "Detail")
		}
		for _, d := range drifts {
			kind := enumWord(d.GetKind().String(), "DRIFT_KIND_")
			counts[kind]++
			where, what := u32(d.GetVni()), d.GetMac()
			if d.GetVrf() != "" {
				where, what = "vrf "+d.GetVrf(), d.GetEntry()
			}
			tabLine(tw, kind, where, dash(d.GetTable()), dash(what), dash(d.GetWantVtep()),
				dash(d.GetKernelVtep()), dash(d.GetDevice()), dash(d.GetDetail()))
		}
		tw.Flush()
		io.WriteString(b, "\n")
	}
	compared := fmt.Sprintf("%s and %s", plural(int(resp.GetCheckedMacs()), "MAC", "MACs"),
		plural(int(resp.GetCheckedFloods()), "flood entry", "flood entries"))
	if n := resp.GetCheckedL3(); n > 0 {
		compared = fmt.Sprintf("%s, %s and %s", plural(int(resp.GetCheckedMacs()), "MAC", "MACs"),
			plural(int(resp.GetCheckedFloods()), "flood entry", "flood entries"), plural(int(n), "L3 entry", "L3 entries"))
	}
	compared += " compared at " + fmtTime(resp.GetTime(), loc, layoutFull)
	if len(drifts) == 0 {
		fmt.Fprintf(b, "No drift: the kernel holds what BGP selected (%s).\n", compared)
	} else {
		var parts []string
		for _, k := range []string{"missing", "extra", "wrong"} {
			if counts[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
				delete(counts, k)
			}
		}
		for k, n := range counts { // kinds this evpnctl does not know
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
		fmt.Fprintf(b, "DRIFT: %s (%s); %s.\n", plural(len(drifts), "entry differs", "entries differ"), strings.Join(parts, ", "), compared)
	}
	if n := resp.GetInFlight(); n > 0 {
		fmt.Fprintf(b, "In flight: %s queued or waiting for a retry (already being repaired).\n", plural(int(n), "kernel write", "kernel writes"))
	}
	return b.Flush()
}

// writeTrace prints the history of a MAC: per VNI a timeline with each
// event's time and its delay since the first one.
func writeTrace(w io.Writer, req *evpndv1.TraceRequest, resp *evpndv1.TraceResponse, loc *time.Location) error {
	b := bufio.NewWriter(w)
	keys := resp.GetKeys()
	if len(keys) == 0 {
		where := "any VNI"
		if req.GetVni() != 0 {
			where = fmt.Sprintf("VNI %d", req.GetVni())
		}
		fmt.Fprintf(b, "No history for MAC %s in %s (history is kept for recently changed MACs only).\n", req.GetMac(), where)
		return b.Flush()
	}
	for i, k := range keys {
		if i > 0 {
			io.WriteString(b, "\n")
		}
		fmt.Fprintf(b, "MAC %s in VNI %d: %s", k.GetMac(), k.GetVni(), plural(len(k.GetEvents()), "event", "events"))
		if k.GetTruncated() {
			io.WriteString(b, " (older events were dropped)")
		}
		io.WriteString(b, "\n")
		if len(k.GetEvents()) == 0 {
			continue
		}
		first := k.GetEvents()[0].GetTime().AsTime()
		tw := newTab(b)
		tabLine(tw, "Time", "Since", "Event", "Peer", "VTEP", "Seq", "RD", "Detail")
		for _, e := range k.GetEvents() {
			since := "-"
			if e.GetTime() != nil {
				since = fmtDelta(e.GetTime().AsTime().Sub(first))
			}
			tabLine(tw, fmtTime(e.GetTime(), loc, layoutFull), since, enumWord(e.GetKind().String(), "TRACE_KIND_"),
				dash(e.GetPeer()), dash(e.GetVtep()), u32(e.GetSeq()), dash(e.GetRd()), dash(e.GetDetail()))
		}
		tw.Flush()
	}
	return b.Flush()
}

// watchLine returns one change as one line, without the newline, e.g.
// "17:01:02.123 MAC added vni 100 02:00:00:00:01:0b remote vtep 10.0.0.2 seq 0".
func watchLine(ev *evpndv1.WatchResponse, loc *time.Location) string {
	var s strings.Builder
	if ev.GetTime() != nil {
		s.WriteString(fmtTime(ev.GetTime(), loc, layoutClock))
	} else {
		s.WriteString("--:--:--.---")
	}
	kind := enumWord(ev.GetKind().String(), "CHANGE_KIND_")
	switch c := ev.GetChange().(type) {
	case *evpndv1.WatchResponse_Mac:
		m := c.Mac.GetMac()
		if ev.GetKind() == evpndv1.ChangeKind_CHANGE_KIND_DUPLICATE {
			kind = "duplicate"
			if !m.GetDuplicate() {
				kind = "duplicate cleared"
			}
		}
		fmt.Fprintf(&s, " MAC %s vni %d %s", kind, m.GetVni(), m.GetMac())
		switch m.GetSource() {
		case evpndv1.MACSource_MAC_SOURCE_LOCAL:
			s.WriteString(" local")
			if m.GetPort() != "" {
				s.WriteString(" port " + m.GetPort())
			}
		case evpndv1.MACSource_MAC_SOURCE_REMOTE:
			s.WriteString(" remote vtep " + m.GetVtep())
		}
		fmt.Fprintf(&s, " seq %d", m.GetSeq())
		if m.GetSticky() {
			s.WriteString(" sticky")
		}
		if m.GetDuplicate() && ev.GetKind() != evpndv1.ChangeKind_CHANGE_KIND_DUPLICATE {
			s.WriteString(" duplicate")
		}
		if c.Mac.GetPrevious() != "" {
			fmt.Fprintf(&s, " (was %s)", c.Mac.GetPrevious())
		}
	case *evpndv1.WatchResponse_Vtep:
		fmt.Fprintf(&s, " VTEP %s vni %d %s", kind, c.Vtep.GetVni(), c.Vtep.GetVtep())
	case *evpndv1.WatchResponse_Peer:
		fmt.Fprintf(&s, " peer %s %s %s", kind, c.Peer.GetAddress(), peerState(c.Peer.GetState()))
	case *evpndv1.WatchResponse_VrfRoute:
		s.WriteString(vrfRouteWatch(kind, c.VrfRoute.GetRoute()))
	case *evpndv1.WatchResponse_Arp:
		s.WriteString(arpWatch(kind, c.Arp.GetEntry()))
	default:
		if ev.GetKind() == evpndv1.ChangeKind_CHANGE_KIND_SYNCED {
			s.WriteString(" synced: initial state complete, changes follow")
		} else {
			// A change this evpnctl does not know: show it raw.
			fmt.Fprintf(&s, " %s %s", kind, protojson.MarshalOptions{}.Format(ev))
		}
	}
	if ev.GetInitial() {
		s.WriteString(" (initial)")
	}
	return s.String()
}
