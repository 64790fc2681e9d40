package httpapi_test

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// TestPoolExhausted holds every connection a request needs (PostgreSQL: the
// whole pool of 2; SQLite: the one write connection): the request is
// answered 503 busy with Retry-After once the bounded wait for a connection
// ends, instead of hanging or failing with 500, and nothing is stored. Once
// the connections are free the same request succeeds.
func TestPoolExhausted(t *testing.T) {
	for _, c := range []struct {
		engine string
		dsn    func(testing.TB) string
		held   int
	}{
		{store.EngineSQLite, storetest.SQLitePath, 1},
		{store.EnginePostgres, storetest.PostgresURL, 2},
	} {
		t.Run(c.engine, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, c.dsn(t), store.Options{Migrate: true, MaxConns: 2, ConnWait: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			e := setup(t, db)
			refusal := `{"wanted":"otro pan","reason":"other","customer_left":"unknown"}`
			before := e.auditSeq()

			var held []*sql.Conn
			for range c.held {
				conn, err := db.SQL().Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, conn)
			}
			res := e.do("POST", "/api/v1/refusals", "ana", refusal)
			p := res.want(http.StatusServiceUnavailable).problem()
			if p.Code != "busy" || p.Key != "error.busy" {
				t.Errorf("problem %+v; want code busy", p)
			}
			if ra := res.header.Get("Retry-After"); ra == "" {
				t.Error("no Retry-After")
			}
			for _, conn := range held {
				conn.Close()
			}
			if after := e.auditSeq(); after != before {
				t.Errorf("the refused request moved the audit trail from %d to %d", before, after)
			}
			e.do("POST", "/api/v1/refusals", "ana", refusal).want(http.StatusCreated)
		})
	}
}

// openStream opens GET /api/v1/events as login and returns the answer; the
// stream is closed when the test ends (or by cancel).
func (e *env) openStream(login string) (*http.Response, context.CancelFunc) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tok[login])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cancel(); res.Body.Close() })
	return res, cancel
}

// TestEventStreamLimits: a member may hold 2 streams and the organisation 3
// (as configured): the next one is 429 with Retry-After; closing a stream
// makes room again.
func TestEventStreamLimits(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			base := setup(t, eng.Open(t))
			e, _ := serveWith(t, base, base.db, func(c *httpapi.Config) { c.StreamsPerMember, c.StreamsPerOrg = 2, 3 })
			e.stream("ana")
			_, closeAna := e.openStream("ana")
			res := e.do("GET", "/api/v1/events", "ana", "")
			if p := res.want(http.StatusTooManyRequests).problem(); p.Code != "too_many" || p.Key != "error.too_many_streams_member" {
				t.Errorf("member limit: %s", res.body)
			}
			if res.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			e.stream("bob") // the organisation's third
			res = e.do("GET", "/api/v1/events", "sara", "")
			if p := res.want(http.StatusTooManyRequests).problem(); p.Key != "error.too_many_streams_org" {
				t.Errorf("organisation limit: %s", res.body)
			}
			// Another organisation is not affected.
			e.stream("omar")
			// A stream that ends gives its place back (the server notices
			// the closed connection at once; wait generously).
			closeAna()
			deadline := time.Now().Add(10 * time.Second)
			for {
				res, _ := e.openStream("sara")
				if res.StatusCode == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a closed stream still counts: %d", res.StatusCode)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestEventStreamEndsOnRevocation: with heartbeats an hour apart (so the
// periodic re-check cannot be what ends it), the stream of a token that is
// revoked, and that of a member who is deactivated, end as soon as the
// broker sees the audit entry; another member's stream stays open.
func TestEventStreamEndsOnRevocation(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			base := setup(t, eng.Open(t))
			e, _ := serveWith(t, base, base.db, func(c *httpapi.Config) { c.Heartbeat = time.Hour })
			ctx := context.Background()
			ana, sara, mario := e.stream("ana"), e.stream("sara"), e.stream("mario")
			if err := e.db.RevokeToken(ctx, e.orgA.ID, e.tokenID("ana"), "test"); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, ana, "revoked token")
			if err := e.db.SetMemberActive(ctx, e.orgA.ID, e.member["sara"].ID, false, "test"); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, sara, "deactivated member")
			select {
			case <-mario.closed:
				t.Fatal("an unrelated stream ended")
			default:
			}
			// A revoked token cannot open a new stream, even while the
			// token cache still remembers it.
			e.do("GET", "/api/v1/events", "ana", "").want(http.StatusUnauthorized)

			// Revoked through the API of this process: its streams end and
			// the token stops working at once.
			bob := e.stream("bob")
			e.do("DELETE", "/api/v1/me/token", "bob", "").want(http.StatusNoContent)
			waitClosed(t, bob, "token revoked through the API")
			e.do("GET", "/api/v1/me", "bob", "").want(http.StatusUnauthorized)
			select {
			case <-mario.closed:
				t.Fatal("an unrelated stream ended")
			default:
			}
		})
	}
}

// TestEventStreamEndsOnRevocationOtherProcess: two API servers over one
// PostgreSQL database, each with its own pool and broker; a token revoked
// through the first ends the stream held on the second.
func TestEventStreamEndsOnRevocationOtherProcess(t *testing.T) {
	url := storetest.PostgresURL(t)
	ctx := context.Background()
	open := func() *store.DB {
		db, err := store.Open(ctx, url, store.Options{Migrate: true, ConnWait: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	one := setup(t, open())
	// The second server has its own pool, engine and broker.
	two, _ := serveWith(t, one, open(), func(c *httpapi.Config) { c.Heartbeat = time.Hour })
	ana := two.stream("ana")
	if err := one.db.RevokeToken(ctx, one.orgA.ID, one.tokenID("ana"), "test"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ana, "token revoked through another process")
}

func waitClosed(t *testing.T, s *stream, what string) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the stream of a %s is still open", what)
	}
}
