package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DefaultRunDir holds one work directory per deployed lab prefix.
const DefaultRunDir = "/run/evpnlab"

// StateFile is the name of the state file in a lab's work directory.
const StateFile = "state.json"

// Options tune Deploy and Open. The zero value deploys the topology under
// its own name in DefaultRunDir/<name>.
type Options struct {
	// Prefix names the namespaces "<Prefix>-<node>". Default: the lab name.
	// Tests use a unique prefix so that parallel runs never collide.
	Prefix string
	// WorkDir holds the state file, one log per node and one directory
	// per node, "<WorkDir>/<node>": containerlab's lab directory, which
	// __clabDir__ names, and __clabNodeDir__. Default: DefaultRunDir/<Prefix>.
	WorkDir string
	// Path lists directories put in front of PATH for exec commands, cmds
	// and Lab.Command, so that "evpnd" and "evpnctl" resolve to freshly
	// built binaries. Deploy records it in the state file; Open uses the
	// recorded Path when given none.
	Path []string
	// Cmd, when set, rewrites a node's cmd (already split into words, binds
	// substituted) before it starts, e.g. to substitute the binary or add
	// flags. Returning an empty slice starts nothing for that node.
	Cmd func(node string, argv []string) []string
	// NoStart deploys namespaces, links and exec commands but starts no
	// cmd; call Lab.Start per node.
	NoStart bool
	// StopGrace is how long Stop and Destroy wait after the signal before
	// SIGKILL. Default 5s.
	StopGrace time.Duration
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

func (o Options) withDefaults(t *Topology) Options {
	if o.Prefix == "" {
		o.Prefix = t.Name
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(DefaultRunDir, o.Prefix)
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// State is what a deployed lab records in WorkDir/state.json so that
// another evpnlab invocation can inspect, exec into and destroy it.
type State struct {
	Lab         string               `json:"lab"`
	Prefix      string               `json:"prefix"`
	Topology    string               `json:"topology,omitempty"`
	WorkDir     string               `json:"work_dir"`
	DeployerPID int                  `json:"deployer_pid"`
	Path        []string             `json:"path,omitempty"` // Options.Path of the deploy, for Open
	Nodes       map[string]NodeState `json:"nodes"`
}

// NodeState is one node's entry in State.
type NodeState struct {
	Namespace string    `json:"namespace"`
	PID       int       `json:"pid,omitempty"` // cmd process; 0 when none
	Cmd       []string  `json:"cmd,omitempty"`
	Log       string    `json:"log,omitempty"`
	Started   time.Time `json:"started,omitzero"`
}

// ReadState reads a lab's state file; a missing file returns (nil, nil).
func ReadState(workDir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(workDir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read lab state %s: %w", filepath.Join(workDir, StateFile), err)
	}
	return &s, nil
}

// writeState replaces the state file atomically.
func writeState(workDir string, s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	tmp := filepath.Join(workDir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(workDir, StateFile)); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}

func removeState(workDir string) error {
	err := os.Remove(filepath.Join(workDir, StateFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove lab state: %w", err)
	}
	return nil
}
