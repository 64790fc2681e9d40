package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/metrics"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// serveWith serves the organisations of e from another API over db (e's
// own database, or a second handle on it, as a second process would),
// wired like setupFull (approvals, a running broker, metrics) and adjusted
// by opts. It returns the new environment and its decision engine.
func serveWith(t *testing.T, e *env, db *store.DB, opts ...func(*httpapi.Config)) (*fullEnv, *decision.Engine) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := newStepClock()
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	eng := decision.New(db, decision.Options{Logger: log, Clock: clk})
	t.Cleanup(eng.Close)
	met := metrics.New(metrics.Options{Counts: db, Clock: clk, Logger: log})
	broker := events.NewBroker(db, events.Options{Clock: clk, Logger: log, Every: 100 * time.Millisecond})
	svc := approval.New(db, eng, approval.Options{Clock: clk, Logger: log, Notify: broker.Notify})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { broker.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	ne := *e
	ne.db = db
	f := &fullEnv{env: &ne, clock: clk, svc: svc, broker: broker, met: met, shutdown: make(chan struct{})}
	cfg := httpapi.Config{Store: db, Engine: eng, Catalog: cat, Logger: log, Clock: clk, Version: "test",
		Approvals: svc, Broker: broker, Shutdown: f.shutdown, Heartbeat: 100 * time.Millisecond, Metrics: met}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ne.srv = httptest.NewServer(h)
	t.Cleanup(ne.srv.Close)
	return f, eng
}

// tokenID is the id of login's newest token.
func (e *env) tokenID(login string) string {
	e.t.Helper()
	m := e.member[login]
	toks, err := e.db.ListTokens(context.Background(), m.OrgID, m.ID)
	if err != nil || len(toks) == 0 {
		e.t.Fatalf("tokens of %s: %v", login, err)
	}
	return toks[0].ID
}

// countingStore counts token lookups, each made slow so that the requests
// of a burst arrive while the first lookup is still running.
type countingStore struct {
	*store.DB
	tokenReads atomic.Int64
}

func (s *countingStore) TokenByHash(ctx context.Context, hash []byte) (*margen.Token, error) {
	s.tokenReads.Add(1)
	time.Sleep(200 * time.Millisecond)
	return s.DB.TokenByHash(ctx, hash)
}

// TestColdTokenLookedUpOnce: 100 requests with one token arriving together
// on a server that has not seen it share one lookup, instead of taking a
// pooled connection each (three reads apiece).
func TestColdTokenLookedUpOnce(t *testing.T) {
	e := setup(t, storetest.OpenSQLite(t))
	cs := &countingStore{DB: e.db}
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	eng := decision.New(cs, decision.Options{})
	t.Cleanup(eng.Close)
	h, err := httpapi.New(httpapi.Config{Store: cs, Engine: eng, Catalog: cat, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+e.tok["ana"])
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("status %d", res.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := cs.tokenReads.Load(); n > 5 {
		t.Errorf("the token was looked up %d times for 100 concurrent requests; want a handful", n)
	}
}
