// Command emptyserver is the baseline of docs/benchmarks.md: a Go HTTP
// server that does nothing but read the request and answer 201 with a small
// JSON body, so the load generator can measure what HTTP alone costs on
// this machine (the ceiling for margen's throughput, the floor for its
// latency). It listens on loopback only and prints its URL.
//
//	go run ./scripts/emptyserver -addr 127.0.0.1:0
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(os.Stderr, "emptyserver: -addr must be a loopback address, like 127.0.0.1:0")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "emptyserver:", err)
		os.Exit(1)
	}
	body := []byte(`{"outcome":"allowed"}` + "\n")
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			w.Write(body)
		}),
	}
	fmt.Printf("emptyserver listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "emptyserver:", err)
		os.Exit(1)
	}
}
