package lab

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// containerlab's magic variables. containerlab replaces them in bind
// sources, exec commands and startup-config paths (not in cmd or env):
// __clabDir__ is the lab directory "clab-<lab>" beside the topology file,
// __clabNodeDir__ the node's directory "clab-<lab>/<node>" in it,
// __clabNodeName__ the node's name and __clabLabName__ the lab directory's
// base name. evpnlab's lab directory is the work directory (Options.WorkDir),
// so a node's directory is "<WorkDir>/<node>"; Deploy creates both.
const (
	varDir      = "__clabDir__"
	varNodeDir  = "__clabNodeDir__"
	varNodeName = "__clabNodeName__"
	varLabName  = "__clabLabName__"
)

// labDirSource reports whether a bind source lies in the lab directory,
// that is starts with __clabDir__ or __clabNodeDir__. Those variables only
// make sense at the start: they stand for absolute paths.
func labDirSource(src string) (bool, error) {
	for _, v := range []string{varNodeDir, varDir} {
		rest, ok := strings.CutPrefix(src, v)
		if ok && (rest == "" || rest[0] == '/') {
			return true, nil
		}
		if strings.Contains(src, v) {
			return false, fmt.Errorf("%s must begin the source path, as in %s/run", v, v)
		}
	}
	return false, nil
}

// ForWorkDir returns a copy of t with containerlab's magic variables
// expanded for a lab whose work directory is workDir, the way Deploy and
// Open see it (Lab.Topology): bind sources and exec commands name real
// paths, and every Node.Dir is "<workDir>/<node>". workDir is made
// absolute. Expanding an expanded topology changes nothing.
func (t *Topology) ForWorkDir(workDir string) *Topology {
	if abs, err := filepath.Abs(workDir); err == nil {
		workDir = abs
	}
	out := *t
	out.Nodes = make([]*Node, len(t.Nodes))
	for i, n := range t.Nodes {
		nodeDir := filepath.Join(workDir, n.Name)
		r := strings.NewReplacer(
			varNodeDir, nodeDir,
			varDir, workDir,
			varNodeName, n.Name,
			varLabName, filepath.Base(workDir),
		)
		c := *n
		c.Dir = nodeDir
		c.Exec = slices.Clone(n.Exec)
		for j, e := range c.Exec {
			c.Exec[j] = r.Replace(e)
		}
		c.Binds = slices.Clone(n.Binds)
		for j, b := range c.Binds {
			c.Binds[j].Src = filepath.Clean(r.Replace(b.Src))
		}
		out.Nodes[i] = &c
	}
	return &out
}
