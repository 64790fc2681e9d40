package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/store"
)

// HTTP server limits. The API answers in milliseconds; the timeouts only
// protect the server from slow or stuck clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second // a policy upload of up to 1 MiB on a poor connection
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout bounds how long in-flight requests may take to finish
	// once a shutdown is asked for.
	shutdownTimeout = 20 * time.Second
)

func cmdServe(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("serve", "", `Runs the HTTP server: the JSON API under /api/v1 and /healthz.

The database schema is migrated on start. The server prints one line,
"margen listening on http://ADDR", once it accepts connections (with the
real port when --addr asks for port 0). On SIGINT or SIGTERM it stops
accepting, lets the requests in flight finish (up to 20s), drains the
decision engine and closes the database.

Example:
  margen serve --addr 127.0.0.1:8080 --db ./margen.db
  MARGEN_DB=postgres://margen:secret@db/margen margen serve --addr :8080`)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on, host:port (env MARGEN_ADDR)")
	fs.dbFlag(&cfg)
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	return serve(ctx, a, cfg)
}

func serve(ctx context.Context, a *app, cfg config) (err error) {
	log := cfg.logger(a.stderr)
	log.Info("margen starting", "version", versionString(), "config", cfg)

	cat, err := i18n.New()
	if err != nil {
		return fmt.Errorf("message catalogue: %w", err)
	}
	st, err := store.Open(ctx, cfg.DB, store.Options{Migrate: true, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close database: %w", cerr)
		}
	}()
	engine := decision.New(st, decision.Options{Logger: log})
	// Runs after the HTTP server has stopped (defers run in reverse order),
	// so no handler can queue a decision on a closed engine.
	defer engine.Close()

	h, err := httpapi.New(httpapi.Config{Store: st, Engine: engine, Catalog: cat, Logger: log,
		Clock: margen.SystemClock{}, Version: versionString()})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests do not inherit ctx: cancelling it starts a graceful
		// shutdown, which must let them finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "engine", st.Engine())
	fmt.Fprintf(a.stdout, "margen listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		// The listener failed on its own.
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", shutdownTimeout, err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
