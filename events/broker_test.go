package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

const testPolicy = `
currency: EUR
actions:
  - id: gift
    label: {es: "Cortesía", en: "Gift"}
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: supervisor
    label: {es: "Supervisor", en: "Supervisor"}
    inherits: [frontline]
grants:
  - id: gift
    role: frontline
    actions: [gift]
    max_amount: 100
    above: {approver: supervisor, sla: 10m, on_timeout: deny}
`

// openPair opens two store handles on one database, as two processes would.
func openPair(t *testing.T, engine string) (*store.DB, *store.DB) {
	t.Helper()
	var dsn string
	if engine == store.EnginePostgres {
		dsn = storetest.PostgresURL(t)
	} else {
		dsn = storetest.SQLitePath(t)
	}
	open := func() *store.DB {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db, err := store.Open(ctx, dsn, store.Options{Migrate: true})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a := open()
	return a, open()
}

type fixture struct {
	st      *store.DB
	eng     *decision.Engine
	org     *margen.Org
	ana, bo *margen.Member
}

func setup(t *testing.T, st *store.DB) *fixture {
	t.Helper()
	o := testsupport.NewOrg(t, st, testsupport.OrgOptions{Policy: testPolicy, Owner: testsupport.Member{Role: "supervisor"},
		Members: []testsupport.Member{{Login: "ana"}, {Login: "bo"}}})
	f := &fixture{st: st, org: o.Org, ana: o.Members["ana"], bo: o.Members["bo"]}
	f.eng = testsupport.Engine(t, st, decision.Options{})
	return f
}

func (f *fixture) decide(t *testing.T, m *margen.Member, amount int64) *margen.Decision {
	t.Helper()
	res, err := f.eng.Decide(context.Background(), &decision.Request{Org: f.org, Member: m, Action: "gift",
		Amount: amount, Customer: decision.CustomerInput{Ref: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Decision
}

// next waits for the next event on ch, at most d.
func next(t *testing.T, ch <-chan events.Event, d time.Duration) (events.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(d):
		return events.Event{}, false
	}
}

// TestTwoBrokers: an event written through the decision engine on one
// process reaches the subscribers of a broker on another process within a
// second; a filter hides what is not meant for a member; a rolled-back
// write announces nothing.
func TestTwoBrokers(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st1, st2 := openPair(t, e.Name)
			f := setup(t, st1)
			f.decide(t, f.ana, 50) // history before anyone subscribes: never sent

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			brokers := []*events.Broker{events.NewBroker(st1, events.Options{}), events.NewBroker(st2, events.Options{})}
			for _, b := range brokers {
				go b.Run(ctx)
			}
			type subscription struct {
				name string
				ch   <-chan events.Event
			}
			var all, anas, bos []subscription
			for i, b := range brokers {
				ch, stop := b.Subscribe(f.org.ID, nil)
				defer stop()
				all = append(all, subscription{fmt.Sprintf("broker %d, everything", i), ch})
				mine := func(m *margen.Member) func(events.Event) bool {
					return func(ev events.Event) bool { return ev.Data.Route().Member == m.ID }
				}
				ch, stop = b.Subscribe(f.org.ID, mine(f.ana))
				defer stop()
				anas = append(anas, subscription{fmt.Sprintf("broker %d, ana", i), ch})
				ch, stop = b.Subscribe(f.org.ID, mine(f.bo))
				defer stop()
				bos = append(bos, subscription{fmt.Sprintf("broker %d, bo", i), ch})
			}

			// A rolled-back batch: its audit entry is written, then the
			// duplicate idempotency key fails the transaction.
			err := st1.DecideBatch(context.Background(), margen.BatchQuery{OrgIDs: []string{f.org.ID}},
				func(*margen.BatchState) (*margen.BatchWrite, error) {
					return &margen.BatchWrite{Audit: []margen.AuditEntry{{OrgID: f.org.ID, Actor: f.ana.ID,
						Action: "decision.create", Subject: "dec_rolledback", Data: []byte(`{"outcome":"allowed"}`)}},
						Idem: []margen.Idempotency{{OrgID: f.org.ID, MemberID: f.ana.ID, Key: "k", RequestHash: "h", Response: []byte("{}")},
							{OrgID: f.org.ID, MemberID: f.ana.ID, Key: "k", RequestHash: "h", Response: []byte("{}")}}}, nil
				})
			if !margen.IsCode(err, margen.ECONFLICT) {
				t.Fatalf("the batch should fail on its duplicate key: %v", err)
			}

			start := time.Now()
			d := f.decide(t, f.ana, 500) // needs approval: decision.made + approval.requested
			for _, s := range append(append([]subscription{}, all...), anas...) {
				for _, want := range []margen.EventType{margen.EventDecisionMade, margen.EventApprovalRequested} {
					ev, ok := next(t, s.ch, time.Second)
					if !ok {
						t.Fatalf("%s: no %s within a second", s.name, want)
					}
					if ev.Type != want || ev.Subject != d.ID || ev.Data.Route().ApprovalID != d.ApprovalID || ev.Data.Route().Member != f.ana.ID || ev.Lagged {
						t.Fatalf("%s: got %+v, want %s of %s", s.name, ev, want, d.ID)
					}
				}
			}
			t.Logf("%s: both brokers delivered in %v", e.Name, time.Since(start).Round(time.Millisecond))
			for _, s := range bos {
				if ev, ok := next(t, s.ch, 300*time.Millisecond); ok {
					t.Fatalf("%s received someone else's event %+v", s.name, ev)
				}
			}
			for _, s := range all {
				if ev, ok := next(t, s.ch, 50*time.Millisecond); ok {
					t.Fatalf("%s: unexpected %+v", s.name, ev)
				}
			}

			// Shutting a broker down closes its subscribers' channels.
			cancel()
			for _, s := range all {
				for {
					if _, ok := next(t, s.ch, 2*time.Second); !ok {
						break
					}
				}
			}
		})
	}
}

// TestLagged: a subscriber that does not keep up loses the oldest events,
// never blocks the broker, and is told so.
func TestLagged(t *testing.T) {
	f := setup(t, storetest.OpenSQLite(t))
	b := events.NewBroker(f.st, events.Options{Buffer: 2})
	ch, stop := b.Subscribe(f.org.ID, nil)
	var last *margen.Decision
	for range 5 {
		last = f.decide(t, f.ana, 10)
	}
	b.Poll(context.Background())
	var got []events.Event
	for len(ch) > 0 {
		got = append(got, <-ch)
	}
	if len(got) != 2 || !got[0].Lagged || got[1].Subject != last.ID {
		t.Fatalf("got %+v", got)
	}
	stop()
	stop() // idempotent
	if _, ok := <-ch; ok {
		t.Fatal("channel open after unsubscribe")
	}
	// A new subscriber starts from now.
	ch, stop = b.Subscribe(f.org.ID, nil)
	defer stop()
	b.Poll(context.Background())
	if len(ch) != 0 {
		t.Fatalf("new subscriber got %d old events", len(ch))
	}
	d := f.decide(t, f.bo, 10)
	b.Notify(f.org.ID)
	b.Poll(context.Background())
	if ev := <-ch; ev.Subject != d.ID || ev.Lagged {
		t.Fatalf("got %+v", ev)
	}
}

// An audit entry whose data does not decode is logged with its seq and
// action, and the events after it are still announced.
func TestUndecodableEntryIsLoggedAndSkipped(t *testing.T) {
	f := setup(t, storetest.OpenSQLite(t))
	var logs bytes.Buffer
	b := events.NewBroker(f.st, events.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ch, stop := b.Subscribe(f.org.ID, nil)
	defer stop()
	// A registered action with data of the wrong shape (written through an
	// import, which appends the entries it is given).
	err := f.st.Import(context.Background(), margen.ImportQuery{OrgID: f.org.ID, Kind: margen.ImportTeams},
		func(*margen.ImportState) (*margen.ImportWrite, error) {
			return &margen.ImportWrite{Audit: []margen.AuditEntry{{OrgID: f.org.ID, Actor: f.ana.ID,
				Action: margen.ActionPolicyPublish, Subject: "policy", Data: json.RawMessage(`{"version":"two"}`)}}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := f.st.LastAuditSeq(context.Background(), f.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := f.decide(t, f.ana, 10)
	b.Poll(context.Background())
	if len(ch) != 1 {
		t.Fatalf("%d events, want the decision's one", len(ch))
	}
	if ev := <-ch; ev.Type != margen.EventDecisionMade || ev.Subject != d.ID {
		t.Fatalf("got %+v", ev)
	}
	if l := logs.String(); !strings.Contains(l, "cannot announce") || !strings.Contains(l, fmt.Sprintf("seq=%d", bad)) ||
		!strings.Contains(l, "action=policy.publish") {
		t.Fatalf("log %q", l)
	}
}
