package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits of what Load and Parse read. They bound the time and memory a
// mistaken or hostile file can cost before any problem is reported: the
// YAML parser's node tree costs about 50 bytes per byte of an ordinary
// config, and more per byte of densely packed values, so MaxFileSize and
// MaxEntries are checked before it is built. Within both, the worst file
// TestBadConfigLargeFiles tries allocates about 125 MB in all. 16,384
// L2VNIs written out with their devices and an access interface take about
// 1 MiB.
const (
	// MaxFileSize is the largest config file evpnd reads, in bytes.
	MaxFileSize = 1 << 20 // 1 MiB
	// MaxEntries bounds the lines and flow items ("[a, b]", "{k: v}") of a
	// file, counted before parsing: a megabyte of "[a,a,a,..." is half a
	// million values, which would cost the parser 300 MB. 16,384 L2VNIs
	// with six keys each take 100,000 lines.
	MaxEntries = 120000
	// MaxAliasValues bounds the values that aliases and merge keys add
	// when expanded; a few nested anchors could otherwise make the walk of
	// a small file exponential.
	MaxAliasValues = 100000
)

// Load reads the config file at path, fills in defaults and validates it.
// Every problem in the file is reported in one *ValidationError: unknown
// keys and values that do not decode together with what Validate finds in
// the rest. A file larger than MaxFileSize, with more than MaxEntries
// lines and list items, or that is not UTF-8 text is refused before it is
// parsed, with a plain error.
func Load(path string) (*Config, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	c, ps, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ps.err(path)
	}
	c.ApplyDefaults()
	verr := c.Validate()
	if len(ps.list) == 0 {
		if verr != nil {
			return nil, verr
		}
		return c, nil
	}
	// Report what Validate found besides the decoding problems, except what
	// follows from them: a bad router-id was dropped, so Validate would call
	// it missing.
	var ve *ValidationError
	if errors.As(verr, &ve) {
		for _, q := range ve.Problems {
			switch {
			case ps.covers(q.Path):
			case len(ps.list) >= maxProblems:
				ps.omitted++
			default:
				ps.list = append(ps.list, q)
			}
		}
		ps.omitted += ve.Omitted // uncounted: whether they follow from ps
	}
	return nil, ps.err(path)
}

// readLimited reads the file at path, refusing one over MaxFileSize before
// reading it (and, for a file whose size stat does not tell, after reading
// one byte more than the limit).
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, tooBig(path, fi.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooBig(path, -1)
	}
	return data, nil
}

func tooBig(source string, size int64) error {
	name := "config"
	if source != "" {
		name += " " + source
	}
	what := "more than"
	if size >= 0 {
		what = fmt.Sprintf("%d bytes,", size)
	}
	return fmt.Errorf("%s: %s over the size limit of %d bytes (%d MiB) that evpnd reads; 16,384 L2VNIs take about 1 MiB, so this is probably not a config file: check the path", name, what, MaxFileSize, MaxFileSize>>20)
}

// Parse decodes one YAML document into a Config, strictly: unknown keys,
// values of the wrong type, addresses, prefixes and durations that do not
// parse are errors naming the key path and line. It neither applies
// defaults nor validates; Load does both. source names the origin (a file
// name) in error messages and may be empty.
//
// Problems with the values are returned together as a *ValidationError;
// input over MaxFileSize or MaxEntries, input that is not UTF-8 text, YAML
// syntax errors, an empty input and more than one document are plain
// errors.
func Parse(data []byte, source string) (*Config, error) {
	c, ps, err := parse(data, source)
	if err != nil {
		return nil, err
	}
	if err := ps.err(source); err != nil {
		return nil, err
	}
	return c, nil
}

// parse decodes data as Parse does, but returns the Config decoded from
// what is left once the problems found are taken out (unknown keys and
// duplicate keys removed, bad values made null), together with those
// problems, so that Load can validate the rest. The Config is nil when
// what is left does not decode either (then the problems say why).
func parse(data []byte, source string) (*Config, *problems, error) {
	name := "config"
	if source != "" {
		name += " " + source
	}
	if len(data) > MaxFileSize {
		return nil, nil, tooBig(source, int64(len(data)))
	}
	if err := checkText(data); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if n := entries(data); n > MaxEntries {
		return nil, nil, fmt.Errorf("%s: more than %d entries (lines, and items of [ ] and { } lists), the most evpnd reads; 16,384 L2VNIs written out in full take 100,000 lines, so this is probably not a config file: check the path", name, MaxEntries)
	}
	root, err := parseOneDocument(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}

	// Walk the node tree against the schema. It names every problem with
	// its key path and line, which the YAML decoder cannot do (it reports Go
	// type names, stops at the first bad address and prints no line for
	// it), and takes each bad value out of the tree.
	w := walker{ps: &problems{lines: map[string]int{}, covered: map[string]bool{}, above: map[string]bool{}}, set: map[string]bool{}}
	w.walk(root, reflect.TypeFor[Config](), "")

	// Decode what is left. The walk has removed every key the schema does
	// not know, so a decoding error here is one the walk missed.
	c := &Config{}
	if err := root.Decode(c); err != nil {
		if len(w.ps.list) == 0 && w.ps.omitted == 0 {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		// The problems found say enough; there is nothing to validate.
		return nil, w.ps, nil
	}
	c.source = source
	c.lines = w.ps.lines
	c.explicit = w.set
	return c, w.ps, nil
}

// entries counts the lines and flow items of data: an upper bound of the
// values the YAML parser will build, give or take a line.
func entries(data []byte) int {
	n := 0
	for _, b := range data {
		switch b {
		case '\n', ',', '[', '{':
			n++
		}
	}
	return n
}

// checkText refuses data that is not UTF-8 text a YAML parser accepts,
// naming the first offending byte's offset and line: the YAML parser's own
// error names neither.
func checkText(data []byte) error {
	line, col := 1, 1 // of the character at i
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		bad := ""
		switch {
		case r == utf8.RuneError && size <= 1:
			bad = "is not UTF-8"
		case r == '\t' || r == '\r' || r == '\n':
		case r < 0x20 || r == 0x7f:
			bad = "is a control character"
		}
		if bad != "" {
			return fmt.Errorf("not a text file: byte 0x%02x at offset %d (line %d, column %d) %s; a config file is YAML text, so check the path (or re-save the file as UTF-8)",
				data[i], i, line, col, bad)
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// parseOneDocument returns the top-level mapping of data, which must hold
// exactly one non-empty YAML document.
func parseOneDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty: write a YAML mapping with at least router-id and asn (see configs/leaf1.yaml)")
		}
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, err
	default:
		return nil, fmt.Errorf("line %d: a second YAML document starts here; evpnd reads one document per file, so remove the extra \"---\" and what follows or merge it into the first", docLine(&next))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, errors.New("the document is empty: write a YAML mapping with at least router-id and asn (see configs/leaf1.yaml)")
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the document must be a mapping of keys such as router-id and asn, not %s", root.Line, kindName(root))
	}
	return root, nil
}

func docLine(n *yaml.Node) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return n.Content[0].Line
	}
	return n.Line
}

var (
	addrType     = reflect.TypeFor[netip.Addr]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	durationType = reflect.TypeFor[time.Duration]()
)

// walker checks a YAML node tree against a Go type, recording the line of
// each key path and a Problem for each value that would not decode, and
// taking that value out of the tree.
type walker struct {
	// ps.covered holds the paths of the problems found, and of the keys an
	// unknown key was probably meant to be: Load drops what Validate says
	// about them, which follows from the problem already reported.
	ps *problems
	// set holds the paths of numbers and durations the file sets, so that
	// ApplyDefaults leaves an explicit zero for Validate to refuse.
	set map[string]bool
	// aliased counts the values visited through an alias or merge key.
	aliased int
	inAlias int
}

// spendAlias counts one value visited through an alias and reports
// whether the budget allows it.
func (w *walker) spendAlias(path string) bool {
	if w.inAlias == 0 {
		return true
	}
	if w.aliased++; w.aliased <= MaxAliasValues {
		return true
	}
	if w.aliased == MaxAliasValues+1 {
		w.problem(path, 0, "", fmt.Sprintf("the aliases (*name) and merge keys (<<) expand to more than %d values; write the repeated parts out plainly", MaxAliasValues))
	}
	return false
}

// problem records a problem and marks its path covered.
func (w *walker) problem(path string, line int, value, reason string) {
	w.ps.cover(path)
	if len(w.ps.list) >= maxProblems {
		w.ps.omitted++
		return
	}
	w.ps.list = append(w.ps.list, Problem{Path: path, Line: line, Value: value, Reason: reason})
}

// drop takes the value n out of the tree: it decodes as null, the zero
// value.
func drop(n *yaml.Node) {
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if !w.spendAlias(path) {
		drop(n)
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		w.inAlias++
		defer func() { w.inAlias-- }()
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // leaves the zero value: a default applies or Validate complains
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// An empty string is an unset address or prefix, as for netip's
	// UnmarshalText and what yaml.Marshal writes for the zero value.
	if (t == addrType || t == prefixType) && n.Kind == yaml.ScalarNode && n.Value == "" {
		return
	}
	switch t {
	case addrType:
		if w.scalar(n, path, "an IP address such as 10.0.0.1") {
			if _, err := netip.ParseAddr(n.Value); err != nil {
				w.bad(n, path, "not an IP address: write it as 10.0.0.1 (IPv4) or 2001:db8::1 (IPv6), without a prefix length")
			}
		}
		return
	case prefixType:
		if w.scalar(n, path, "a prefix such as 10.0.0.0/24") {
			if _, err := netip.ParsePrefix(n.Value); err != nil {
				w.bad(n, path, "not a prefix: write it as address/length, such as 10.0.0.0/24")
			}
		}
		return
	case durationType:
		if w.scalar(n, path, "a duration such as 30s") && w.duration(n, path) {
			w.set[path] = true
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.problem(path, n.Line, "", fmt.Sprintf("want a list (lines starting with \"- \", or [a, b]), got %s", kindName(n)))
			drop(n)
			return
		}
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			w.ps.lines[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	case reflect.String:
		w.scalar(n, path, "a string")
	case reflect.Bool:
		if w.scalar(n, path, "true or false") {
			var b bool
			if n.Decode(&b) != nil {
				w.bad(n, path, "want true or false%s", quoted(n))
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if w.scalar(n, path, "a whole number") {
			if !plainInt(n, t) && n.Decode(reflect.New(t).Interface()) != nil {
				w.bad(n, path, "want a whole number%s%s", intRange(t), quoted(n))
			} else {
				w.set[path] = true
			}
		}
	default:
		// Not used by the schema; decoding checks it.
	}
}

// plainInt reports whether n is a decimal integer that fits t, without
// the cost of a YAML decoder; false leaves the answer to one.
func plainInt(n *yaml.Node, t reflect.Type) bool {
	if n.ShortTag() != "!!int" {
		return false
	}
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		_, err := strconv.ParseUint(n.Value, 10, t.Bits())
		return err == nil
	}
	_, err := strconv.ParseInt(n.Value, 10, t.Bits())
	return err == nil
}

// mapping walks a mapping node decoded into struct type t. It removes the
// pairs whose key is unknown, repeated or not a name, so that what is left
// decodes.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.problem(path, n.Line, "", "want a mapping of keys (key: value), got "+kindName(n))
		drop(n)
		return
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			if w.merge(v, t, path) {
				kept = append(kept, k, v)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.problem(path, k.Line, "", "a key must be a plain name, got "+kindName(k))
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		f, ok := fields[k.Value]
		if !ok {
			reason, meant := unknownKey(k.Value, fields)
			w.problem(cut(p), k.Line, "", reason)
			if meant != "" {
				if path != "" {
					meant = path + "." + meant
				}
				w.ps.cover(meant)
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.problem(p, k.Line, "", fmt.Sprintf("set twice (first on line %d); keep one", first))
			continue
		}
		seen[k.Value] = k.Line
		w.ps.lines[p] = k.Line
		w.walk(v, f.Type, p)
		kept = append(kept, k, v)
	}
	clear(n.Content[len(kept):])
	n.Content = kept
}

// merge walks the value of a "<<" merge key: a mapping or a list of them,
// merged into the enclosing struct. It reports whether the value can stay.
func (w *walker) merge(v *yaml.Node, t reflect.Type, path string) bool {
	if !w.spendAlias(path) {
		return false
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		w.inAlias++
		defer func() { w.inAlias-- }()
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		ok := true
		for _, m := range v.Content {
			ok = w.merge(m, t, path) && ok
		}
		return ok
	}
	w.mapping(v, t, path)
	return v.Kind == yaml.MappingNode
}

// scalar reports whether n is a scalar, recording a problem and dropping n
// if not.
func (w *walker) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	w.problem(path, n.Line, "", fmt.Sprintf("want %s, got %s", want, kindName(n)))
	drop(n)
	return false
}

// bad records a problem with the value of n and drops it.
func (w *walker) bad(n *yaml.Node, path, format string, args ...any) {
	w.problem(path, n.Line, quote(n.Value), fmt.Sprintf(format, args...))
	drop(n)
}

// duration checks a duration and reports whether it is one. A bare number
// is not: YAML makes it an integer, which Go's decoder refuses with a type
// error that names no key.
func (w *walker) duration(n *yaml.Node, path string) bool {
	bare := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 &&
		(n.ShortTag() == "!!int" || n.ShortTag() == "!!float")
	if _, err := time.ParseDuration(n.Value); err == nil && !bare {
		return true
	}
	if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
		w.bad(n, path, "a number alone is not a duration: write it with a unit, such as %ss for seconds (units: ms, s, m, h)", cutString(n.Value))
		return false
	}
	w.bad(n, path, "not a duration: write a number with a unit, such as 500ms, 30s, 3m or 1h30m")
	return false
}

// fieldCache holds yamlFields' answers: the schema is fixed, and computing
// them for each of 16,384 L2VNI entries would cost more than the parse.
var fieldCache sync.Map // reflect.Type → map[string]reflect.StructField

// yamlFields maps the YAML keys of struct type t to its fields. The map is
// shared: don't modify it.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	m := map[string]reflect.StructField{}
	defer fieldCache.Store(t, m)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

// unknownKey explains an unknown key and suggests the nearest known one,
// which it also returns ("" when none is close).
func unknownKey(key string, fields map[string]reflect.StructField) (string, string) {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	best, bestD := "", 3 // suggest only close matches
	// No key is longer than maxQuoted: don't spend an edit distance on
	// a megabyte.
	norm := ""
	if len(key) <= maxQuoted {
		norm = strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	}
	for _, n := range names {
		if norm == "" {
			break
		}
		if n == norm {
			best = n
			break
		}
		if d := editDistance(norm, n); d < bestD {
			best, bestD = n, d
		}
	}
	msg := "unknown key " + quote(key)
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg + "; known keys here: " + strings.Join(names, ", "), best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func intRange(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf(" from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	}
	return "" // signed fields are ints whose real range Validate checks
}

// quoted adds a hint when a number or boolean was written in quotes, which
// makes it a string in YAML.
func quoted(n *yaml.Node) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return "; a quoted value is a string: remove the quotes"
	}
	return ""
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "the value " + quote(n.Value)
}
