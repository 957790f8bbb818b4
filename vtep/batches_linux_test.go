package vtep

import (
	"bufio"
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// TestEnsureInBatchesKeepsForwarding: a leaf bridging two hosts in VNI
// 100 keeps forwarding, without losing one of 100 pings a second, while
// 1,000 VNIs are added to it with EnsureInBatches; and each batch is
// handed over with its devices up.
func TestEnsureInBatchesKeepsForwarding(t *testing.T) {
	ns, h := testNS(t, "vtb")
	hosts := []*netns.NS{netns.ForTest(t, "vtba"), netns.ForTest(t, "vtbb")}
	for i, host := range hosts {
		acc, hp := "acc"+itoa(uint32(i)), "host"+itoa(uint32(i))
		sh(t, ns, "ip", "link", "add", acc, "type", "veth", "peer", "name", hp)
		sh(t, ns, "ip", "link", "set", hp, "netns", host.Name)
		sh(t, host, "sysctl", "-qw", "net.ipv6.conf."+hp+".disable_ipv6=1")
		sh(t, host, "ip", "addr", "add", "192.168.100."+itoa(uint32(i+1))+"/24", "dev", hp)
		sh(t, host, "ip", "link", "set", hp, "up")
	}
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	ctx := context.Background()
	if err := m.Ensure(ctx, []L2VNI{vniSpec(100, "acc0", "acc1")}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"acc0", "acc1"} {
		waitForwarding(t, ns, p)
	}
	sh(t, hosts[0], "ping", "-c", "1", "-W", "5", "192.168.100.2") // ARP resolved

	// 100 pings a second, each line with its sequence number.
	ping := hosts[0].Command(ctx, "ping", "-n", "-i", "0.01", "192.168.100.2")
	out, err := ping.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		seqs  = map[int]bool{}
		maxMS float64
	)
	reply := regexp.MustCompile(`icmp_seq=(\d+) .*time=([\d.]+) ms`)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := reply.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				ms, _ := strconv.ParseFloat(m[2], 64)
				mu.Lock()
				seqs[n] = true
				maxMS = max(maxMS, ms)
				mu.Unlock()
			}
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = ping.Process.Signal(os.Interrupt)
			<-readDone
			_ = ping.Wait()
		}
	}
	t.Cleanup(stop)
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs)
	}
	eventually(t, "the first pings answered", func() error {
		if received() < 20 {
			return errNotYet
		}
		return nil
	})

	vnis := make([]L2VNI, 1000)
	for i := range vnis {
		vnis[i] = vniSpec(uint32(20000 + i))
	}
	start := time.Now()
	batches := 0
	err = m.EnsureInBatches(ctx, vnis, 0, func(part []L2VNI) error {
		batches++
		for _, v := range []L2VNI{part[0], part[len(part)-1]} {
			if err := vxlanPortOK(h, v.VXLAN, v.Bridge); err != nil {
				t.Errorf("batch %d handed over before its devices are up: %v", batches, err)
			}
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// Pings sent during the creation and 300 ms after it.
	before := received()
	eventually(t, "pings after the creation", func() error {
		if received() < before+30 {
			return errNotYet
		}
		return nil
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	last := 0
	for n := range seqs {
		last = max(last, n)
	}
	var lost []string
	for n := 1; n < last; n++ { // the last one sent may still have been in flight
		if !seqs[n] {
			lost = append(lost, strconv.Itoa(n))
		}
	}
	t.Logf("1,000 VNIs in %d batches took %v; %d pings answered, slowest %.1f ms", batches, took.Round(time.Millisecond), len(seqs), maxMS)
	if batches != 4 {
		t.Errorf("%d batches, want 4 of at most %d", batches, DefaultBatch)
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d pings lost while VNIs were added: icmp_seq %s", len(lost), last-1, strings.Join(lost, " "))
	}
	if links, err := h.LinkList(); err != nil || len(links) < 2*len(vnis) {
		t.Errorf("%d links after adding %d VNIs (%v)", len(links), len(vnis), err)
	}
}

var errNotYet = errors.New("not yet")
