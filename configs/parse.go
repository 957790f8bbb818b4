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
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path, fills in defaults and validates it.
// Every problem in the file is reported in one *ValidationError.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes one YAML document into a Config, strictly: unknown keys,
// values of the wrong type, addresses, prefixes and durations that do not
// parse are errors naming the key path and line. It neither applies
// defaults nor validates; Load does both. source names the origin (a file
// name) in error messages and may be empty.
//
// Problems with the values are returned together as a *ValidationError;
// YAML syntax errors, an empty input and more than one document are plain
// errors.
func Parse(data []byte, source string) (*Config, error) {
	name := "config"
	if source != "" {
		name += " " + source
	}
	root, err := parseOneDocument(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}

	// First pass: walk the node tree against the schema. It names every
	// problem with its key path and line, which the YAML decoder cannot do
	// (it reports Go type names, stops at the first bad address and prints
	// no line for it).
	w := walker{ps: &problems{lines: map[string]int{}}}
	w.walk(root, reflect.TypeFor[Config](), "")
	if err := w.ps.err(source); err != nil {
		return nil, err
	}

	// Second pass: the real decode, with the decoder's own strict mode as a
	// backstop for anything the walk let through.
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.source = source
	c.lines = w.ps.lines
	return c, nil
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

// maxNodes bounds the walk. Aliases make the tree a DAG that a walk expands;
// a few nested anchors could otherwise make it exponential.
const maxNodes = 100000

var (
	addrType     = reflect.TypeFor[netip.Addr]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	durationType = reflect.TypeFor[time.Duration]()
)

// walker checks a YAML node tree against a Go type, recording the line of
// each key path and a Problem for each value that would not decode.
type walker struct {
	ps    *problems
	nodes int
}

// spend counts one node visit and reports whether the budget allows it.
func (w *walker) spend(path string) bool {
	if w.nodes++; w.nodes <= maxNodes {
		return true
	}
	if w.nodes == maxNodes+1 {
		w.ps.add(path, "", "the document expands to more than %d values through aliases and merge keys; write it out plainly", maxNodes)
	}
	return false
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if !w.spend(path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
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
		if w.scalar(n, path, "a duration such as 30s") {
			w.duration(n, path)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.ps.list = append(w.ps.list, Problem{Path: path, Line: n.Line,
				Reason: fmt.Sprintf("want a list (lines starting with \"- \", or [a, b]), got %s", kindName(n))})
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
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
			if n.Decode(reflect.New(t).Interface()) != nil {
				w.bad(n, path, "want a whole number%s%s", intRange(t), quoted(n))
			}
		}
	default:
		// Not used by the schema; the decoder's backstop checks it.
	}
}

// mapping walks a mapping node decoded into struct type t.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.ps.list = append(w.ps.list, Problem{Path: path, Line: n.Line,
			Reason: fmt.Sprintf("want a mapping of keys (key: value), got %s", kindName(n))})
		return
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			w.merge(v, t, path)
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode {
			w.ps.list = append(w.ps.list, Problem{Path: path, Line: k.Line,
				Reason: fmt.Sprintf("a key must be a plain name, got %s", kindName(k))})
			continue
		}
		f, ok := fields[k.Value]
		if !ok {
			w.ps.list = append(w.ps.list, Problem{Path: p, Line: k.Line,
				Reason: unknownKey(k.Value, fields)})
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.ps.list = append(w.ps.list, Problem{Path: p, Line: k.Line,
				Reason: fmt.Sprintf("set twice (first on line %d); keep one", first)})
			continue
		}
		seen[k.Value] = k.Line
		w.ps.lines[p] = k.Line
		w.walk(v, f.Type, p)
	}
}

// merge walks the value of a "<<" merge key: a mapping or a list of them,
// merged into the enclosing struct.
func (w *walker) merge(v *yaml.Node, t reflect.Type, path string) {
	if !w.spend(path) {
		return
	}
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, m := range v.Content {
			w.merge(m, t, path)
		}
		return
	}
	w.mapping(v, t, path)
}

// scalar reports whether n is a scalar, recording a problem if not.
func (w *walker) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	w.ps.list = append(w.ps.list, Problem{Path: path, Line: n.Line,
		Reason: fmt.Sprintf("want %s, got %s", want, kindName(n))})
	return false
}

func (w *walker) bad(n *yaml.Node, path, format string, args ...any) {
	w.ps.list = append(w.ps.list, Problem{Path: path, Line: n.Line,
		Value: strconv.Quote(n.Value), Reason: fmt.Sprintf(format, args...)})
}

func (w *walker) duration(n *yaml.Node, path string) {
	if _, err := time.ParseDuration(n.Value); err == nil {
		return
	}
	if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
		w.bad(n, path, "a duration needs a unit: write %ss for seconds (units: ms, s, m, h)", n.Value)
		return
	}
	w.bad(n, path, "not a duration: write a number with a unit, such as 500ms, 30s, 3m or 1h30m")
}

// yamlFields maps the YAML keys of struct type t to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
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

// unknownKey explains an unknown key and suggests the nearest known one.
func unknownKey(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	best, bestD := "", 3 // suggest only close matches
	norm := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	for _, n := range names {
		if n == norm {
			best = n
			break
		}
		if d := editDistance(norm, n); d < bestD {
			best, bestD = n, d
		}
	}
	msg := fmt.Sprintf("unknown key %q", key)
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg + "; known keys here: " + strings.Join(names, ", ")
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
	return fmt.Sprintf("the value %q", n.Value)
}
