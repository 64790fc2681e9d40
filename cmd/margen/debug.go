package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// debugHandler serves the private debug listener (--debug-addr): the Go
// profiler under /debug/pprof/ and the Prometheus metrics at /metrics. It
// is a mux of its own, so nothing of it reaches the public listener.
func debugHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// debugServer is the HTTP server of the debug listener. A CPU profile or a
// trace streams for as long as its ?seconds= asks, so the write timeout is
// generous; it is not reachable from outside (checkDebugAddr).
func debugServer(metrics http.Handler) *http.Server {
	return &http.Server{
		Handler:           debugHandler(metrics),
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// checkDebugAddr accepts a debug address only on a loopback or private
// IP: the profiler shows the program's memory and command line and costs
// CPU, so it must never face the Internet.
func checkDebugAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--debug-addr %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !(ip.IsLoopback() || ip.IsPrivate()) {
		return fmt.Errorf("--debug-addr %q: give a loopback or private IP address, like 127.0.0.1:6060", addr)
	}
	return nil
}
