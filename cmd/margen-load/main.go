// Command margen-load drives a running margen server with decisions over
// HTTP and reports throughput, latency percentiles and outcomes. It is the
// load command behind docs/benchmarks.md; it only ever talks to the URL it is
// given and stops by itself after -n requests or -duration.
//
//	margen-load -url http://127.0.0.1:8080 -token mgn_... -c 64 -n 200000
//	margen-load -url ... -token ... -rate 12000 -duration 10s   # open loop, fixed rate
//
// The server's rate limits must be off (or far above the load): serve with
// MARGEN_RATE_LIMIT_TOKEN=0 MARGEN_RATE_LIMIT_ADDRESS=0, as scripts/bench.sh
// does; otherwise most requests are answered 429.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "margen-load:", err)
		os.Exit(1)
	}
}

type result struct {
	lat     time.Duration
	status  int
	outcome string
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("margen-load", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	tokens := fs.String("token", "", "API token(s), comma-separated; requests rotate over them")
	conc := fs.Int("c", 64, "concurrent connections (closed loop)")
	n := fs.Int("n", 100000, "total requests (closed loop)")
	rate := fs.Int("rate", 0, "requests per second (open loop; 0 = closed loop)")
	dur := fs.Duration("duration", 10*time.Second, "how long to run in open-loop mode")
	action := fs.String("action", "courtesy_gift", "action to request")
	amount := fs.Int64("amount", 100, "amount in minor units")
	customers := fs.Int("customers", 1000, "distinct customer refs to spread over")
	idem := fs.Bool("idem", false, "send an Idempotency-Key with every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tokens == "" {
		return fmt.Errorf("-token is required (create one with: margen token create --org SLUG --member LOGIN)")
	}
	if !strings.HasPrefix(*url, "http://127.") && !strings.HasPrefix(*url, "http://localhost") && !strings.HasPrefix(*url, "http://[::1]") {
		return fmt.Errorf("-url must be a loopback address, got %s", *url)
	}
	toks := strings.Split(*tokens, ",")
	idle := max(*conc*2, 1024) // open loop: up to 4096 requests in flight, keep their connections
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: idle, MaxIdleConnsPerHost: idle, IdleConnTimeout: time.Minute, DisableCompression: true}}
	actionJSON, _ := json.Marshal(*action)
	bodyHead := `{"action":` + string(actionJSON) + `,"amount":` + strconv.FormatInt(*amount, 10) + `,"customer":{"ref":"load-`
	var seq atomic.Int64
	do := func() result {
		i := seq.Add(1)
		// The body is built by hand: the load generator shares the
		// machine with the server, so its own cost is kept small.
		body := make([]byte, 0, len(bodyHead)+64)
		body = append(body, bodyHead...)
		body = strconv.AppendInt(body, i%int64(*customers), 10)
		body = append(body, `"},"reason":"load test"}`...)
		req, _ := http.NewRequest("POST", *url+"/api/v1/decisions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+toks[int(i)%len(toks)])
		req.Header.Set("Content-Type", "application/json")
		if *idem {
			req.Header.Set("Idempotency-Key", fmt.Sprintf("load-%d-%d", time.Now().UnixNano(), i))
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return result{lat: time.Since(start), status: -1}
		}
		var d struct {
			Outcome string `json:"outcome"`
		}
		json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		return result{lat: time.Since(start), status: resp.StatusCode, outcome: d.Outcome}
	}

	var mu sync.Mutex
	var results []result
	record := func(r result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	if *rate > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *dur)
		defer cancel()
		interval := time.Second / time.Duration(*rate)
		next := time.Now()
		sem := make(chan struct{}, 4096)
	loop:
		for {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break loop
				}
			} else if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				record(do())
				<-sem
			}()
		}
	} else {
		var left atomic.Int64
		left.Store(int64(*n))
		for range *conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					record(do())
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	report(out, results, elapsed)
	return nil
}

func report(out io.Writer, results []result, elapsed time.Duration) {
	lats := make([]time.Duration, 0, len(results))
	statuses := map[int]int{}
	outcomes := map[string]int{}
	for _, r := range results {
		lats = append(lats, r.lat)
		statuses[r.status]++
		if r.outcome != "" {
			outcomes[r.outcome]++
		}
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(float64(len(lats))*p))]
	}
	fmt.Fprintf(out, "requests   %d in %s\n", len(results), elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "throughput %.0f decisions/s\n", float64(len(results))/elapsed.Seconds())
	fmt.Fprintf(out, "latency    p50 %s  p90 %s  p99 %s  max %s\n", pct(0.50), pct(0.90), pct(0.99), pct(1))
	fmt.Fprintf(out, "status     %v\n", statuses)
	fmt.Fprintf(out, "outcomes   %v\n", outcomes)
}
