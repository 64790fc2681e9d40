package decision_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/store/storetest"
)

// TestBadTextNeverReachesABatch sends decisions whose strings the database
// refuses (NUL, invalid UTF-8) straight to the engine, concurrently with good
// ones: the bad are refused before they are queued, every good one is
// recorded and no batch transaction fails, on both engines.
func TestBadTextNeverReachesABatch(t *testing.T) {
	bad := []struct {
		field string
		mod   func(*decision.Request)
	}{
		{"customer.ref", func(r *decision.Request) { r.Customer.Ref = "\x00" }},
		{"customer.ref", func(r *decision.Request) { r.Customer.Ref = "mesa\xff\xfe" }},
		{"customer.name", func(r *decision.Request) { r.Customer.Name = "Ana\x00" }},
		{"customer.contact", func(r *decision.Request) { r.Customer.Contact = "\xc3" }},
		{"customer.tags", func(r *decision.Request) { r.Customer.Tags = []string{"vip", "\x00"} }},
		{"reason", func(r *decision.Request) { r.Reason = "porque\x00" }},
		{"action", func(r *decision.Request) { r.Action = "courtesy_gift\x00" }},
		{"context.note", func(r *decision.Request) { r.Context = json.RawMessage(`{"note":"\u0000"}`) }},
		{"context", func(r *decision.Request) { r.Context = json.RawMessage("{\"n\xff\":1}") }},
		{"Idempotency-Key", func(r *decision.Request) {
			r.Idem = &margen.IdemWrite[*margen.Decision]{Record: margen.Idempotency{Key: "\xff\xfe", RequestHash: "h"},
				Respond: func(*margen.Decision) ([]byte, error) { return []byte("{}"), nil }}
		}},
	}
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			f := setup(t, e.open, testPolicy)
			ctx := context.Background()
			var wg sync.WaitGroup
			var good atomic.Int64
			errs := make(chan error, 1000)
			for i := range 20 {
				for j, b := range bad {
					wg.Add(2)
					go func() {
						defer wg.Done()
						r := f.req("courtesy_gift", 1, fmt.Sprintf("bad-%d-%d", i, j))
						b.mod(r)
						_, err := f.eng.Decide(ctx, r)
						var me *margen.Error
						if !errors.As(err, &me) || me.Code != margen.EINVALID || me.Field != b.field {
							errs <- fmt.Errorf("bad %s: err = %v; want invalid %s", b.field, err, b.field)
						}
					}()
					go func() {
						defer wg.Done()
						r := f.req("courtesy_gift", 1, fmt.Sprintf("good-%d-%d", i, j))
						r.Reason = "línea uno\nlínea dos\tcon tab"
						if _, err := f.eng.Decide(ctx, r); err != nil {
							errs <- fmt.Errorf("good: %v", err)
							return
						}
						good.Add(1)
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := f.eng.FailedBatches(); n != 0 {
				t.Errorf("%d batch transactions failed; want 0", n)
			}
			list, err := f.st.ListDecisions(ctx, f.org.ID, margen.DecisionFilter{Page: margen.Page{Limit: 1000}})
			if err != nil || int64(len(list)) != good.Load() || good.Load() != int64(20*len(bad)) {
				t.Fatalf("stored %d decisions, %d good answers (%v); want %d", len(list), good.Load(), err, 20*len(bad))
			}
		})
	}
}

// poisonStore fails every batch that names the customer "poison", as a
// database would fail a batch holding a value it refuses, and counts the
// batch transactions.
type poisonStore struct {
	margen.Store
	calls atomic.Int64
}

func (s *poisonStore) CommitBatch(ctx context.Context, q margen.BatchQuery, decide func(*margen.BatchState) (*margen.BatchWrite, error)) (func() error, error) {
	s.calls.Add(1)
	for _, c := range q.Customers {
		if c.Ref == "poison" {
			return nil, errors.New("poisonStore: value refused")
		}
	}
	return s.Store.CommitBatch(ctx, q, decide)
}

// TestFailingRequestIsIsolated: a request that makes its batch of 64 fail
// is isolated by halving the batch, in 1 + 2·log2(64) transactions, not in
// one transaction per request; the 63 others are recorded.
func TestFailingRequestIsIsolated(t *testing.T) {
	f := setup(t, func(t testing.TB) margen.Store { return storetest.OpenSQLite(t) }, testPolicy)
	ps := &poisonStore{Store: f.st}
	// The writer waits (up to a minute) until 64 decisions fill one batch.
	eng := decision.New(ps, decision.Options{MaxBatch: 64, MaxWait: 60e9})
	defer eng.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := fmt.Sprintf("c%d", i)
			if i == 17 {
				ref = "poison"
			}
			if _, err := eng.Decide(ctx, f.req("courtesy_gift", 1, ref)); err != nil {
				failed.Add(1)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	if ok.Load() != 63 || failed.Load() != 1 {
		t.Fatalf("%d recorded, %d failed; want 63 and 1", ok.Load(), failed.Load())
	}
	if n := ps.calls.Load(); n > 1+2*6 {
		t.Errorf("%d batch transactions to isolate one bad request in 64; want at most %d", n, 1+2*6)
	}
	if n := eng.FailedBatches(); n != 1+6 {
		t.Errorf("FailedBatches = %d; want %d (the batch and one half at each of 6 levels)", n, 1+6)
	}
}

// countingStore counts reads of the active policy.
type countingStore struct {
	margen.Store
	reads atomic.Int64
}

func (s *countingStore) ActivePolicy(ctx context.Context, orgID string) (*margen.PolicyVersion, error) {
	s.reads.Add(1)
	return s.Store.ActivePolicy(ctx, orgID)
}

// TestColdPolicyLoadedOnce: 300 decisions arriving together on a cold
// engine read and compile the policy once between them, instead of taking
// a pooled connection each (which starved the writer of connections).
func TestColdPolicyLoadedOnce(t *testing.T) {
	f := setup(t, func(t testing.TB) margen.Store { return storetest.OpenSQLite(t) }, testPolicy)
	cs := &countingStore{Store: f.st}
	eng := decision.New(cs, decision.Options{})
	defer eng.Close()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 300 {
		wg.Go(func() {
			<-start
			if _, err := eng.Decide(context.Background(), f.req("courtesy_gift", 1, fmt.Sprintf("c%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	// Loads that began before the first one finished share it; a caller
	// that arrives after it may start another, hence a small bound.
	if n := cs.reads.Load(); n > 5 {
		t.Errorf("the active policy was read %d times for 300 concurrent decisions; want a handful", n)
	}
}
