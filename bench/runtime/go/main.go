// SPDX-License-Identifier: MIT
//
// remorabench: the Go reference side of bench/runtime. Every subcommand runs
// the same algorithm as the C program rtbench (bench/runtime/rtbench.c) with
// the same iteration counts and the same number of Ps (GOMAXPROCS), and prints
// machine-readable lines:
//
//	RESULT name=<row> value=<number> unit=<unit>
//
// Usage: remorabench <a|b1|b2|c1|c4|d|e|f|g|h> [-n N] [-dur SECONDS] [-conns N]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Iteration counts; keep in sync with rtbench.c.
const (
	defNA    = 1000000  // (a) parked Gs
	defNB    = 2000000  // (b) round trips (2 hand-offs each)
	defNC    = 20000000 // (c) items
	defND    = 20000000 // (d) selects
	defNE    = 20000000 // (e) yields per G (2 Gs)
	defNF    = 1000000  // (f) tasks
	defNG    = 100000   // (g) sleepers
	defNH    = 1000     // (h) connections
	defDurH  = 10       // (h) seconds
	chanCap  = 1024     // (c)
	msgSize  = 64       // (h)
	sleepMax = 100 * time.Millisecond
	gSeed    = 0x5eed5eed
	histSub  = 64 // log-linear histogram: 64 sub-buckets per power of two
	histBkts = 36 * histSub
)

func result(name string, value float64, unit string) {
	fmt.Printf("RESULT name=%s value=%.6g unit=%s\n", name, value, unit)
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "remorabench: "+format+"\n", a...)
	os.Exit(1)
}

// vmRSS returns VmRSS from /proc/self/status in bytes.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		die("open /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line[len("VmRSS:"):])
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				die("parse VmRSS: %v", err)
			}
			return kb * 1024
		}
	}
	die("no VmRSS")
	return 0
}

// splitmix64: the same generator as rtbench.c, so (g) sleeps the same durations.
func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ---- (a) spawn N Gs that park on one channel ----

func benchA(n int) {
	runtime.GOMAXPROCS(2)
	ch := make(chan int)
	var started, exited sync.WaitGroup
	runtime.GC()
	before := vmRSS()
	started.Add(n)
	exited.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-ch
			exited.Done()
		}()
	}
	started.Wait()
	el := time.Since(t0)
	after := vmRSS()
	close(ch)
	exited.Wait()
	result("a_time", float64(el.Nanoseconds())/1e6, "ms")
	result("a_bytes_per_g", float64(after-before)/float64(n), "bytes")
}

// ---- (b) unbuffered ping-pong ----

func benchB(procs, n int) {
	runtime.GOMAXPROCS(procs)
	ping := make(chan int)
	pong := make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ping <- i
			<-pong
		}
		wg.Done()
	}()
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v
		}
		wg.Done()
	}()
	wg.Wait()
	el := time.Since(t0)
	result(fmt.Sprintf("b_p%d", procs), float64(el.Nanoseconds())/float64(2*n), "ns")
}

// ---- (c) buffered channel, P producers / P consumers ----

func benchC(pairs, n int) {
	runtime.GOMAXPROCS(2)
	ch := make(chan int64, chanCap)
	var prod, cons sync.WaitGroup
	var sum int64
	per := n / pairs
	total := per * pairs
	prod.Add(pairs)
	cons.Add(pairs)
	t0 := time.Now()
	for c := 0; c < pairs; c++ {
		go func() {
			var s int64
			for v := range ch {
				s += v
			}
			atomic.AddInt64(&sum, s)
			cons.Done()
		}()
	}
	for p := 0; p < pairs; p++ {
		go func() {
			for i := 0; i < per; i++ {
				ch <- int64(i)
			}
			prod.Done()
		}()
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	el := time.Since(t0)
	want := int64(pairs) * int64(per) * int64(per-1) / 2
	if sum != want {
		die("c: sum %d want %d", sum, want)
	}
	result(fmt.Sprintf("c_%dx%d", pairs, pairs), float64(total)/el.Seconds(), "items/s")
}

// ---- (d) select over two channels with default, nothing ready ----

func benchD(n int) {
	runtime.GOMAXPROCS(1)
	a := make(chan int)
	b := make(chan int)
	defaults := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		select {
		case <-a:
		case <-b:
		default:
			defaults++
		}
	}
	el := time.Since(t0)
	if defaults != n {
		die("d: %d defaults of %d", defaults, n)
	}
	result("d_select", float64(el.Nanoseconds())/float64(n), "ns")
}

// ---- (e) yield ping-pong on one P ----

func benchE(n int) {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	result("e_yield", float64(el.Nanoseconds())/float64(2*n), "ns")
}

// ---- (f) one G fans out N tiny tasks on 2 Ps ----

func benchF(n int) {
	runtime.GOMAXPROCS(2)
	var wg sync.WaitGroup
	var sum int64
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func(v int64) {
			atomic.AddInt64(&sum, v)
			wg.Done()
		}(int64(i))
	}
	wg.Wait()
	el := time.Since(t0)
	if want := int64(n) * int64(n-1) / 2; sum != want {
		die("f: sum %d want %d", sum, want)
	}
	result("f_fanout", float64(el.Nanoseconds())/1e6, "ms")
}

// ---- (g) N sleepers with random 0-100 ms, lateness ----

func percentile(sorted []int64, q float64) int64 {
	n := len(sorted)
	idx := int(q*float64(n)+0.999999999) - 1
	if idx < 0 {
		idx = 0
	}
	if idx >= n {
		idx = n - 1
	}
	return sorted[idx]
}

func benchG(n int) {
	runtime.GOMAXPROCS(2)
	durs := make([]time.Duration, n)
	seed := uint64(gSeed)
	for i := range durs {
		durs[i] = time.Duration(splitmix64(&seed) % uint64(sleepMax+1))
	}
	late := make([]int64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			d := durs[i]
			deadline := time.Now().Add(d)
			time.Sleep(d)
			late[i] = int64(time.Since(deadline))
			wg.Done()
		}(i)
	}
	wg.Wait()
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	if late[0] < 0 {
		early := sort.Search(n, func(i int) bool { return late[i] >= 0 })
		fmt.Fprintf(os.Stderr, "remorabench: g: WARNING %d sleepers woke early (min %d ns)\n", early, late[0])
	}
	result("g_p50", float64(percentile(late, 0.50))/1e3, "us")
	result("g_p99", float64(percentile(late, 0.99))/1e3, "us")
}

// ---- (h) TCP echo over loopback ----

type hist [histBkts]uint32

func histIndex(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	m := 63 - bits.LeadingZeros64(uint64(v)) // >= 6
	idx := (m-5)*histSub + int((uint64(v)>>(m-6))&(histSub-1))
	if idx >= histBkts {
		idx = histBkts - 1
	}
	return idx
}

// histValue returns the midpoint of bucket idx in ns.
func histValue(idx int) float64 {
	if idx < histSub {
		return float64(idx)
	}
	m := idx/histSub + 5
	sub := idx % histSub
	lo := uint64(histSub+sub) << (m - 6)
	width := uint64(1) << (m - 6)
	return float64(lo) + float64(width)/2
}

func histPercentile(h *hist, total uint64, q float64) float64 {
	rank := uint64(q*float64(total) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i := range h {
		cum += uint64(h[i])
		if cum >= rank {
			return histValue(i)
		}
	}
	return histValue(histBkts - 1)
}

func benchH(conns int, dur time.Duration) {
	runtime.GOMAXPROCS(2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("h: listen: %v", err)
	}
	addr := ln.Addr().String()
	var servers sync.WaitGroup
	servers.Add(conns)
	go func() {
		for i := 0; i < conns; i++ {
			c, err := ln.Accept()
			if err != nil {
				die("h: accept: %v", err)
			}
			go func(c net.Conn) {
				buf := make([]byte, msgSize)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						break
					}
					if _, err := c.Write(buf); err != nil {
						break
					}
				}
				c.Close()
				servers.Done()
			}(c)
		}
	}()

	var connected, clients sync.WaitGroup
	connected.Add(conns)
	clients.Add(conns)
	goCh := make(chan struct{})
	var end time.Time
	hists := make([]hist, conns)
	counts := make([]uint64, conns)
	for i := 0; i < conns; i++ {
		go func(i int) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				die("h: dial: %v", err)
			}
			connected.Done()
			<-goCh
			buf := make([]byte, msgSize)
			for j := range buf {
				buf[j] = byte(i + j)
			}
			h := &hists[i]
			var n uint64
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if _, err := c.Write(buf); err != nil {
					die("h: write: %v", err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					die("h: read: %v", err)
				}
				t1 := time.Now()
				if t1.After(end) {
					break
				}
				h[histIndex(int64(t1.Sub(t0)))]++
				n++
			}
			counts[i] = n
			c.Close()
			clients.Done()
		}(i)
	}
	connected.Wait()
	end = time.Now().Add(dur)
	close(goCh)
	clients.Wait()
	servers.Wait()
	ln.Close()

	var all hist
	var total uint64
	for i := range hists {
		for b := range hists[i] {
			all[b] += hists[i][b]
		}
		total += counts[i]
	}
	if total == 0 {
		die("h: no round trips")
	}
	result("h_msgs", float64(total)/dur.Seconds(), "msgs/s")
	result("h_p99", histPercentile(&all, total, 0.99)/1e3, "us")
}

func main() {
	if len(os.Args) < 2 {
		die("usage: remorabench <a|b1|b2|c1|c4|d|e|f|g|h> [-n N] [-dur SECONDS] [-conns N]")
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	n := fs.Int("n", 0, "iterations (0 = the row's default)")
	durS := fs.Float64("dur", defDurH, "(h) seconds")
	conns := fs.Int("conns", defNH, "(h) connections")
	_ = fs.Parse(os.Args[2:])
	pick := func(def int) int {
		if *n > 0 {
			return *n
		}
		return def
	}
	switch cmd {
	case "a":
		benchA(pick(defNA))
	case "b1":
		benchB(1, pick(defNB))
	case "b2":
		benchB(2, pick(defNB))
	case "c1":
		benchC(1, pick(defNC))
	case "c4":
		benchC(4, pick(defNC))
	case "d":
		benchD(pick(defND))
	case "e":
		benchE(pick(defNE))
	case "f":
		benchF(pick(defNF))
	case "g":
		benchG(pick(defNG))
	case "h":
		benchH(*conns, time.Duration(*durS*float64(time.Second)))
	default:
		die("unknown benchmark %q", cmd)
	}
}
