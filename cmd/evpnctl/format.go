package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Shared helpers of the table and detail views. Every view is a function
// of proto messages and an io.Writer, so tests need no server.

// row builds one line of a fixed-width table: a streamed table cannot
// measure its columns before printing, so each column has a fixed width
// that fits its usual values; a wider value pushes the rest of its row
// right instead of being cut.
type row struct{ b []byte }

// col appends s, padded to width, and the column separator.
func (r *row) col(s string, width int) {
	r.b = append(r.b, s...)
	for n := len(s); n < width; n++ {
		r.b = append(r.b, ' ')
	}
	r.b = append(r.b, ' ')
}

// rcol appends s right-aligned in width, and the column separator.
func (r *row) rcol(s string, width int) {
	for n := len(s); n < width; n++ {
		r.b = append(r.b, ' ')
	}
	r.b = append(r.b, s...)
	r.b = append(r.b, ' ')
}

// str appends s as is.
func (r *row) str(s string) { r.b = append(r.b, s...) }

// writeTo writes the line without trailing blanks and resets r.
func (r *row) writeTo(w *bufio.Writer) error {
	b := r.b
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	b = append(b, '\n')
	_, err := w.Write(b)
	r.b = r.b[:0]
	return err
}

// newTab is the aligned writer of the small tables (VNIs, peers, drifts,
// traces), which are measured before they are printed.
func newTab(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// tabLine writes cells as one tabwriter row. The last cell is not padded,
// so rows end without blanks.
func tabLine(tw io.Writer, cells ...string) {
	io.WriteString(tw, strings.Join(cells, "\t")+"\n")
}

// dash is what an empty cell shows.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// enumWord turns an enum value name (MAC_SOURCE_LOCAL) into the word
// evpnctl prints (local). A value this evpnctl does not know prints as
// its number.
func enumWord(name, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, prefix)), "_", "-")
}

// plural returns "1 MAC", "2 MACs".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// fmtUpDown is a session age the way BGP operators read it: hh:mm:ss
// within a day, 1d02h03m within a week, 1w2d03h beyond.
func fmtUpDown(d *durationpb.Duration) string {
	if d == nil || d.AsDuration() <= 0 {
		return "never"
	}
	t := d.AsDuration()
	s := int64(t / time.Second)
	switch {
	case t < 24*time.Hour:
		return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	case t < 7*24*time.Hour:
		return fmt.Sprintf("%dd%02dh%02dm", s/86400, s/3600%24, s/60%60)
	}
	return fmt.Sprintf("%dw%dd%02dh", s/(7*86400), s/86400%7, s/3600%24)
}

// fmtUptime is a daemon's uptime: 42s, 5m06s, 2h03m04s, 3d04h05m06s.
func fmtUptime(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	s := int64(d.AsDuration() / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm%02ds", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%dd%02dh%02dm%02ds", s/86400, s/3600%24, s/60%60, s%60)
}

// fmtDelta is the time since a trace's first event: +0ms, +12.3ms,
// +1.234s, +2m03.456s.
func fmtDelta(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDelta(-d)[1:]
	case d < time.Second:
		d = d.Round(100 * time.Microsecond)
		return "+" + strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + "ms"
	case d < time.Minute:
		return "+" + strconv.FormatFloat(d.Round(time.Millisecond).Seconds(), 'f', 3, 64) + "s"
	}
	d = d.Round(time.Millisecond)
	m := d / time.Minute
	return fmt.Sprintf("+%dm%06.3fs", m, (d - m*time.Minute).Seconds())
}

// Timestamp layouts.
const (
	layoutFull  = "2006-01-02T15:04:05.000Z07:00" // RFC 3339 with ms
	layoutClock = "15:04:05.000"
)

func fmtTime(ts *timestamppb.Timestamp, loc *time.Location, layout string) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().In(loc).Format(layout)
}
