package configs

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Problem is one thing wrong with a configuration: where it is, what was
// written there, and what is wrong with it and how to fix it.
type Problem struct {
	// Path is the key path of the offending value, such as "l2vnis[1].vni"
	// or "neighbors[0].address". It is empty for problems with the whole
	// document.
	Path string
	// Line is the 1-based line of the value in the source, or 0 when it is
	// not known (a default, or a Config built in code).
	Line int
	// Value is the offending value as written or as defaulted, or "" when
	// the problem is a missing value.
	Value string
	// Reason says what is wrong and what to do about it.
	Reason string
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	if p.Value != "" {
		fmt.Fprintf(&b, "%s: ", p.Value)
	}
	b.WriteString(p.Reason)
	return b.String()
}

// ValidationError lists every problem found in one configuration, whether
// while decoding it (Parse) or while checking it (Validate). All problems are
// reported at once so that an operator can fix a file in one pass.
type ValidationError struct {
	Source   string // file name or other origin; may be empty
	Problems []Problem
	// Omitted counts the problems found beyond maxProblems, which are
	// counted but not kept: a file with a million bad entries must not
	// cost a million messages.
	Omitted int
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.Source != "" {
		b.WriteString(" ")
		b.WriteString(e.Source)
	}
	switch len(e.Problems) + e.Omitted {
	case 0:
		b.WriteString(": invalid")
	case 1:
		b.WriteString(": ")
		b.WriteString(e.Problems[0].Error())
	default:
		total := len(e.Problems) + e.Omitted
		fmt.Fprintf(&b, ": %d problems:", total)
		for i, p := range e.Problems {
			if i == MaxProblemsShown {
				fmt.Fprintf(&b, "\n  ... and %d more problems, not shown: fix these first", total-i)
				break
			}
			b.WriteString("\n  ")
			b.WriteString(p.Error())
		}
	}
	return b.String()
}

// MaxProblemsShown is how many problems ValidationError.Error lists; it
// counts the rest.
const MaxProblemsShown = 50

// maxProblems is how many problems a ValidationError keeps; it counts the
// rest in Omitted.
const maxProblems = 1000

// maxQuoted is the most bytes of a value that a problem quotes.
const maxQuoted = 64

// quote quotes s for a message, cut after maxQuoted bytes (on a character
// boundary) with its full length, so that a 10 MB value is not echoed.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(cutString(s)) + fmt.Sprintf("... (%d bytes)", len(s))
}

// short returns s as it is, or cut after maxQuoted bytes with its full
// length, for values written unquoted in a problem.
func short(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return cutString(s) + fmt.Sprintf("... (%d bytes)", len(s))
}

// cutString returns s, or its first maxQuoted bytes cut on a character
// boundary.
func cutString(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	i := maxQuoted
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// cut shortens a key path that ends in an overlong key.
func cut(path string) string {
	if len(path) <= 2*maxQuoted {
		return path
	}
	return cutString(path) + "..."
}

// Unwrap returns the problems as errors, so that errors.As can find a
// Problem.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// problems collects Problems; lines maps key paths to source lines.
type problems struct {
	list    []Problem
	omitted int // beyond maxProblems
	lines   map[string]int
	// covered: see walker.covered; above holds the ancestors of the
	// covered paths.
	covered, above map[string]bool
}

// covers reports whether a problem at path follows from one already
// recorded: it is at, under or above a covered path. A problem of the
// whole document (path "") is never covered.
func (ps *problems) covers(path string) bool {
	if path == "" {
		return false
	}
	for p := path; p != ""; {
		if ps.covered[p] {
			return true
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ps.above[path]
}

// cover marks path covered.
func (ps *problems) cover(path string) {
	ps.covered[path] = true
	for p := path; ; {
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			return
		}
		p = p[:i]
		if ps.above[p] {
			return
		}
		ps.above[p] = true
	}
}

// add records a problem at path. The line is the path's own line when the
// source had it, else the line of its nearest ancestor that it had (a
// defaulted l2vnis[1].rd points at l2vnis[1]).
func (ps *problems) add(path, value, format string, args ...any) {
	if len(ps.list) >= maxProblems {
		ps.omitted++
		return
	}
	ps.list = append(ps.list, Problem{
		Path:   path,
		Line:   lineOf(ps.lines, path),
		Value:  value,
		Reason: fmt.Sprintf(format, args...),
	})
}

func (ps *problems) err(source string) error {
	if len(ps.list) == 0 && ps.omitted == 0 {
		return nil
	}
	// In file order; problems without a line concern the whole document
	// (a missing key) and come first.
	slices.SortStableFunc(ps.list, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return &ValidationError{Source: source, Problems: ps.list, Omitted: ps.omitted}
}

// lineOf finds the source line of path or of its nearest recorded ancestor.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}
