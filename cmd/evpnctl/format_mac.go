package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// Column widths of the MAC table: a VNI has at most 8 digits, a MAC 17
// characters, an IPv4 VTEP 15.
const (
	macColVNI    = 8
	macColMAC    = 17
	macColType   = 6
	macColVTEP   = 15
	macColSeq    = 5
	macColFlags  = 10
	macColKernel = 6
)

// macTable prints the MAC table as its pages arrive, with fixed column
// widths: it holds one line, never the table (cf. vtysh's
// "show evpn mac vni all").
type macTable struct {
	w                         *bufio.Writer
	r                         row
	rows, local, remote, dups int
	flagged                   bool
}

func newMACTable(w io.Writer) *macTable {
	return &macTable{w: bufio.NewWriterSize(w, 64<<10)}
}

func (t *macTable) header() error {
	t.r.col("VNI", macColVNI)
	t.r.col("MAC", macColMAC)
	t.r.col("Type", macColType)
	t.r.col("VTEP/Port", macColVTEP)
	t.r.col("Seq", macColSeq)
	t.r.col("Flags", macColFlags)
	t.r.col("Kernel", macColKernel)
	t.r.str("Other VTEPs")
	return t.r.writeTo(t.w)
}

// page prints one page of rows and flushes them.
func (t *macTable) page(macs []*evpndv1.MAC) error {
	for _, m := range macs {
		if t.rows == 0 {
			if err := t.header(); err != nil {
				return err
			}
		}
		t.rows++
		r := &t.r
		r.col(u32(m.GetVni()), macColVNI)
		r.col(m.GetMac(), macColMAC)
		where := m.GetVtep()
		switch m.GetSource() {
		case evpndv1.MACSource_MAC_SOURCE_LOCAL:
			t.local++
			r.col("local", macColType)
			where = m.GetPort()
		case evpndv1.MACSource_MAC_SOURCE_REMOTE:
			t.remote++
			r.col("remote", macColType)
		default:
			r.col(enumWord(m.GetSource().String(), "MAC_SOURCE_"), macColType)
		}
		r.col(dash(where), macColVTEP)
		r.col(u32(m.GetSeq()), macColSeq)
		var flags string
		switch {
		case m.GetSticky() && m.GetDuplicate():
			flags = "sticky,dup"
		case m.GetSticky():
			flags = "sticky"
		case m.GetDuplicate():
			flags = "dup"
		}
		if m.GetDuplicate() {
			t.dups++
			t.flagged = true
		}
		r.col(flags, macColFlags)
		r.col(yesNo(m.GetInKernel()), macColKernel)
		for i, o := range m.GetOtherVteps() {
			if i > 0 {
				r.str(",")
			}
			r.str(o)
		}
		if err := r.writeTo(t.w); err != nil {
			return err
		}
	}
	return t.w.Flush()
}

// finish prints the totals.
func (t *macTable) finish() error {
	if t.rows == 0 {
		io.WriteString(t.w, "No MACs.\n")
		return t.w.Flush()
	}
	fmt.Fprintf(t.w, "\nDisplayed %s: %d local, %d remote", plural(t.rows, "MAC", "MACs"), t.local, t.remote)
	if t.dups > 0 {
		fmt.Fprintf(t.w, ", %d duplicate", t.dups)
	}
	io.WriteString(t.w, "\n")
	if t.flagged {
		io.WriteString(t.w, strings.Join([]string{
			"dup: the MAC moved too often (RFC 7432 section 15): this leaf no longer advertises",
			"     its local moves (with mac-mobility.freeze it also stays where it was); the flag",
			`     clears after a quiet window, or now with "evpnctl clear evpn dup-addr vni VNI mac MAC"`,
		}, "\n")+"\n")
	}
	return t.w.Flush()
}

// macDetail prints one MAC looked up by VNI and MAC (cf. vtysh's "show
// evpn mac vni V mac M"), or says it is not in the table.
type macDetail struct {
	w     io.Writer
	vni   uint32
	mac   string
	found bool
}

func (d *macDetail) page(macs []*evpndv1.MAC) error {
	b := bufio.NewWriter(d.w)
	for _, m := range macs {
		d.found = true
		p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
		p("MAC: %s\n", m.GetMac())
		p(" VNI: %d\n", m.GetVni())
		switch m.GetSource() {
		case evpndv1.MACSource_MAC_SOURCE_LOCAL:
			p(" Type: local\n")
			p(" Port: %s\n", dash(m.GetPort()))
			p(" Local VTEP: %s\n", dash(m.GetVtep()))
		case evpndv1.MACSource_MAC_SOURCE_REMOTE:
			p(" Type: remote\n")
			p(" Remote VTEP: %s\n", dash(m.GetVtep()))
		default:
			p(" Type: none selected\n")
		}
		p(" Sequence: %d\n", m.GetSeq())
		p(" Sticky: %s\n", yesNo(m.GetSticky()))
		if m.GetDuplicate() {
			p(" Duplicate: yes (moved too often; \"evpnctl clear evpn dup-addr vni %d mac %s\" clears it)\n", m.GetVni(), m.GetMac())
		} else {
			p(" Duplicate: no\n")
		}
		p(" In the kernel: %s\n", yesNo(m.GetInKernel()))
		p(" Other VTEPs advertising it: %s\n", joinOr(m.GetOtherVteps(), ", ", "none"))
	}
	return b.Flush()
}

func (d *macDetail) finish() error {
	if d.found {
		return nil
	}
	_, err := fmt.Fprintf(d.w, "MAC %s is not in VNI %d's table.\n", d.mac, d.vni)
	return err
}
