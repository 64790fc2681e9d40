package testsupport

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
)

// Discard is a logger that writes nothing.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Engine returns a decision engine over st, closed when the test ends.
// A nil logger discards.
func Engine(t testing.TB, st decision.Store, opt decision.Options) *decision.Engine {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = Discard()
	}
	eng := decision.New(st, opt)
	t.Cleanup(eng.Close)
	return eng
}

// Server serves the API built from cfg on a local port until the test
// ends. It fills in the message catalogue, a discarding logger and the
// version "test" when cfg leaves them out.
func Server(t testing.TB, cfg httpapi.Config) *httptest.Server {
	t.Helper()
	if cfg.Catalog == nil {
		cat, err := i18n.New()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Catalog = cat
	}
	if cfg.Logger == nil {
		cfg.Logger = Discard()
	}
	if cfg.Version == "" {
		cfg.Version = "test"
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
