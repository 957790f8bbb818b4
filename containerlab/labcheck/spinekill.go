package labcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Commander makes a command that runs argv in a lab node, like
// lab.Lab.Command or "docker exec".
type Commander func(ctx context.Context, node string, argv ...string) (*exec.Cmd, error)

// Flow is the outcome of one ping stream of KillDuring.
type Flow struct {
	From, To       Host
	Routed         bool // To is in another VNI, reached through the gateways
	Sent, Received int
}

// Lost is the number of echo requests without a reply.
func (f Flow) Lost() int { return f.Sent - f.Received }

func (f Flow) String() string {
	how := fmt.Sprintf("VNI %d", f.From.VNI)
	if f.Routed {
		how = fmt.Sprintf("routed, VNI %d to %d", f.From.VNI, f.To.VNI)
	}
	return fmt.Sprintf("%s -> %s (%s): %d sent, %d received, %d lost", f.From.Name, f.To.Name, how, f.Sent, f.Received, f.Lost())
}

// Ping stream parameters of KillDuring: 20 requests a second for 15 s;
// the kill comes once every stream has 10 replies.
const (
	flowCount    = 300
	flowInterval = "0.05"
	flowWarm     = 10
)

// KillDuring runs a ping stream from every host of the first leaf to every
// host of its VNI on the other leafs, and to every host it routes to on
// the other leafs (over the L3VNI, symmetric IRB), calls kill once every stream has
// had replies, and returns what each stream lost. Each stream is one
// inner flow; VXLAN gives each its own UDP source port, so with layer-4
// ECMP hashing they spread over the spines.
func (p *Plan) KillDuring(ctx context.Context, command Commander, kill func() error) ([]Flow, error) {
	first := p.Leafs[0].Name
	var flows []*Flow
	for _, a := range p.Hosts {
		if a.Leaf != first {
			continue
		}
		for _, b := range p.Hosts {
			switch {
			case b.Leaf == first:
			case b.VNI == a.VNI:
				flows = append(flows, &Flow{From: a, To: b})
			case a.RoutesTo(b.Addr()) && b.RoutesTo(a.Addr()):
				flows = append(flows, &Flow{From: a, To: b, Routed: true})
			}
		}
	}
	if len(flows) == 0 {
		return nil, fmt.Errorf("no host of %s has a peer on another leaf", first)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		warm   sync.WaitGroup
		done   sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		sumRE  = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
		failed = make(chan struct{})
		once   sync.Once
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		once.Do(func() { close(failed) })
	}
	for _, f := range flows {
		c, err := command(ctx, f.From.Name, "ping", "-n", "-i", flowInterval, "-c", strconv.Itoa(flowCount), "-W", "1", f.To.Addr().String())
		if err != nil {
			return nil, err
		}
		out, err := c.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := c.Start(); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		warm.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			replies, warmed := 0, false
			sc := bufio.NewScanner(out)
			var summary string
			for sc.Scan() {
				line := sc.Text()
				if strings.Contains(line, "bytes from") {
					replies++
					if replies == flowWarm {
						warmed = true
						warm.Done()
					}
				}
				if m := sumRE.FindStringSubmatch(line); m != nil {
					summary = line
					f.Sent, _ = strconv.Atoi(m[1])
					f.Received, _ = strconv.Atoi(m[2])
				}
			}
			c.Wait() // ping exits non-zero when it lost packets; the summary says how many
			if !warmed {
				warm.Done()
				fail(fmt.Errorf("%s -> %s: fewer than %d replies before the kill (%q)", f.From.Name, f.To.Name, flowWarm, summary))
			} else if summary == "" {
				fail(fmt.Errorf("%s -> %s: ping printed no summary", f.From.Name, f.To.Name))
			}
		}()
	}
	warmed := make(chan struct{})
	go func() { warm.Wait(); close(warmed) }()
	select {
	case <-warmed:
	case <-failed:
	}
	select {
	case <-failed:
	default:
		if err := kill(); err != nil {
			fail(fmt.Errorf("kill: %w", err))
		}
	}
	done.Wait()
	res := make([]Flow, len(flows))
	for i, f := range flows {
		res[i] = *f
	}
	return res, errors.Join(errs...)
}
