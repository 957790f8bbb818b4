package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// A keyword is one word of a command's positional grammar: a word alone
// ("duplicate") or a word and its value ("vni 100").
type keyword struct {
	name string
	// value names what follows the word ("VNI"); "" for a word alone.
	value string
	// help describes the word in shell completion.
	help string
	// excludes names keywords that cannot be given with this one.
	excludes []string
	// complete lists the value's candidates for shell completion.
	complete func(cmd *cobra.Command) []cobra.Completion
}

// grammar is the positional keywords of one command, in any order, each
// at most once, like vtysh's. A keyword may be abbreviated to a unique
// prefix ("dup" for "duplicate").
type grammar struct {
	path  string // the command, for messages: "show evpn mac"
	words []keyword
}

// parsed holds the keywords given: name -> value ("" for a word alone).
type parsed map[string]string

func (p parsed) has(name string) bool { _, ok := p[name]; return ok }

func (g *grammar) names() []string {
	var n []string
	for _, w := range g.words {
		n = append(n, w.name)
	}
	return n
}

// lookup finds the keyword tok names, exactly or by a unique prefix.
func (g *grammar) lookup(tok string) (*keyword, error) {
	var found []*keyword
	for i := range g.words {
		w := &g.words[i]
		if w.name == tok {
			return w, nil
		}
		if strings.HasPrefix(w.name, tok) {
			found = append(found, w)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("%s: %q is not a keyword here (want %s)", g.path, tok, orList(g.names()))
	}
	var n []string
	for _, w := range found {
		n = append(n, w.name)
	}
	return nil, fmt.Errorf("%s: %q is ambiguous (%s)", g.path, tok, orList(n))
}

// parse reads args against the grammar.
func (g *grammar) parse(args []string) (parsed, error) {
	p := parsed{}
	for i := 0; i < len(args); i++ {
		w, err := g.lookup(args[i])
		if err != nil {
			return nil, err
		}
		if p.has(w.name) {
			return nil, fmt.Errorf("%s: %q given twice", g.path, w.name)
		}
		for _, x := range w.excludes {
			if p.has(x) {
				return nil, fmt.Errorf("%s: %q and %q exclude each other (give neither for both)", g.path, x, w.name)
			}
		}
		v := ""
		if w.value != "" {
			if i+1 == len(args) {
				return nil, fmt.Errorf("%s: %q needs a value: %s", g.path, w.name, w.value)
			}
			i++
			v = args[i]
		}
		p[w.name] = v
	}
	return p, nil
}

// completion is the shell completion of a grammar: the keywords not given
// yet, or the values of the keyword just typed. skip leading positional
// arguments (such as trace's MAC) come before the keywords.
func (g *grammar) completion(skip int, first func(cmd *cobra.Command) []cobra.Completion) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		nofile := cobra.ShellCompDirectiveNoFileComp
		if len(args) < skip {
			if first != nil {
				return first(cmd), nofile
			}
			return nil, nofile
		}
		given := parsed{}
		for i := skip; i < len(args); i++ {
			w, err := g.lookup(args[i])
			if err != nil {
				return nil, nofile
			}
			if w.value != "" {
				if i+1 == len(args) {
					// The value of w is being typed.
					if w.complete != nil {
						return w.complete(cmd), nofile
					}
					return nil, nofile
				}
				i++
			}
			given[w.name] = ""
		}
		var out []cobra.Completion
	next:
		for _, w := range g.words {
			if given.has(w.name) {
				continue
			}
			for _, x := range w.excludes {
				if given.has(x) {
					continue next
				}
			}
			out = append(out, cobra.CompletionWithDesc(w.name, w.help))
		}
		return out, nofile
	}
}

// maxVNI is the largest 24-bit VNI.
const maxVNI = 1<<24 - 1

// parseVNI reads a VNI, 1 to 16777215.
func parseVNI(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || n > maxVNI {
		return 0, fmt.Errorf("%q is not a VNI (want 1-%d)", s, maxVNI)
	}
	return uint32(n), nil
}

// parseMAC reads a 48-bit MAC in any form net.ParseMAC knows and returns
// it as the API spells MACs: lower-case, colon-separated.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address (want the form 02:00:00:00:01:0b)", s)
	}
	return hw.String(), nil
}

// routeTypes are the route types "show evpn route type" accepts, with
// FRR's names for them.
var routeTypes = map[string]uint32{"2": 2, "3": 3, "5": 5, "macip": 2, "multicast": 3, "prefix": 5}

func parseRouteType(s string) (uint32, error) {
	if t, ok := routeTypes[s]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("route type %q is not supported (want 2, 3 or 5; or macip, multicast or prefix)", s)
}
