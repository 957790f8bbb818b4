package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// parseBind parses containerlab's "src:dst[:mode]" for node. ok is false
// for a one-part bind (an anonymous volume in Docker), which means nothing
// on a namespace. Relative sources are relative to dir, "~" is the home
// directory, as in containerlab. __clabNodeName__ in the source becomes
// node; a source starting with __clabDir__ or __clabNodeDir__ is kept as
// it is, marked InLabDir, until ForWorkDir resolves it (see magic.go).
func parseBind(s, dir, node string) (b Bind, ok bool, err error) {
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		return Bind{}, false, nil
	case 2, 3:
	default:
		return Bind{}, false, fmt.Errorf("bind %q: want src:dst[:mode]", s)
	}
	src, dst := parts[0], parts[1]
	if src == "" || dst == "" {
		return Bind{}, false, fmt.Errorf("bind %q: empty source or destination", s)
	}
	if !strings.HasPrefix(dst, "/") {
		return Bind{}, false, fmt.Errorf("bind %q: destination must be an absolute path", s)
	}
	if dst = filepath.Clean(dst); dst == "/" {
		return Bind{}, false, fmt.Errorf("bind %q: cannot bind over /", s)
	}
	src = strings.ReplaceAll(src, varNodeName, node)
	inLab, err := labDirSource(src)
	if err != nil {
		return Bind{}, false, fmt.Errorf("bind %q: %w", s, err)
	}
	if src == "~" || strings.HasPrefix(src, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return Bind{}, false, fmt.Errorf("bind %q: %w", s, err)
		}
		src = filepath.Join(home, strings.TrimPrefix(src, "~"))
	}
	if !inLab && !filepath.IsAbs(src) {
		src = filepath.Join(dir, src)
	}
	b = Bind{Src: filepath.Clean(src), Dst: dst, InLabDir: inLab}
	if len(parts) == 3 {
		for _, opt := range strings.Split(parts[2], ",") {
			if opt == "ro" {
				b.ReadOnly = true
			}
		}
	}
	return b, true, nil
}

// HostPath rewrites every container path in s that lies under a bind's
// destination to the bind's host source: with the bind
// "cfg/leaf1.yaml:/etc/evpnd/evpnd.yaml", the string
// "evpnd run --config /etc/evpnd/evpnd.yaml" becomes
// "evpnd run --config /abs/topo/dir/cfg/leaf1.yaml".
//
// A destination matches only as a whole path or a path prefix
// ("/etc/evpnd" matches "/etc/evpnd/x" but not "/etc/evpnd2") that starts
// at the beginning of s or after whitespace, a quote or one of "=:,(;|&<>".
// The longest destination wins. Host paths are inserted as they are, so
// bind sources with spaces or shell metacharacters are not supported.
func (n *Node) HostPath(s string) string {
	if len(n.Binds) == 0 {
		return s
	}
	binds := make([]Bind, len(n.Binds))
	copy(binds, n.Binds)
	sort.SliceStable(binds, func(i, j int) bool { return len(binds[i].Dst) > len(binds[j].Dst) })
	var b strings.Builder
	for i := 0; i < len(s); {
		if i == 0 || strings.IndexByte(pathStart, s[i-1]) >= 0 {
			if bd, ok := matchBind(s[i:], binds); ok {
				b.WriteString(bd.Src)
				i += len(bd.Dst)
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

const (
	pathStart = " \t\n'\"=:,(;|&<>"
	pathEnd   = " \t\n'\":,);|&<>/"
)

func matchBind(s string, binds []Bind) (Bind, bool) {
	for _, bd := range binds {
		if !strings.HasPrefix(s, bd.Dst) {
			continue
		}
		if rest := s[len(bd.Dst):]; rest == "" || strings.IndexByte(pathEnd, rest[0]) >= 0 {
			return bd, true
		}
	}
	return Bind{}, false
}

// splitWords splits a command in containerlab's "shell form" into argv:
// words separated by blanks, with '...' literal, "..." honouring \" \\ \$
// and \`, and a backslash outside quotes escaping the next character. No
// expansion happens: there is no shell.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("%q: trailing backslash", s)
			}
			i++
			cur.WriteByte(s[i])
			in = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%q: unterminated single quote", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			in = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%q: unterminated double quote", s)
			}
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
