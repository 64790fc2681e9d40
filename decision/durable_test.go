package decision_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/store/storetest"
)

// syncGate holds every committed batch's durability until the test lets it
// through, and reports each commit with the number of customers it wrote
// for (one per decision when every decision names its own).
type syncGate struct {
	margen.Store
	committed chan int
	release   chan struct{}
}

func (s *syncGate) CommitBatch(ctx context.Context, q margen.BatchQuery, decide func(*margen.BatchState) (*margen.BatchWrite, error)) (func() error, error) {
	durable, err := s.Store.CommitBatch(ctx, q, decide)
	if err != nil {
		return nil, err
	}
	s.committed <- len(q.Customers)
	return func() error {
		<-s.release
		return durable()
	}, nil
}

// TestAnsweredOnlyOnceDurable: a decision is answered only after its batch
// is durable, and while one batch waits for the disk the writer commits the
// next one (after at most MaxBatchTime) instead of waiting with it.
func TestAnsweredOnlyOnceDurable(t *testing.T) {
	st := &syncGate{Store: storetest.OpenSQLite(t), committed: make(chan int, 8), release: make(chan struct{})}
	f := setupWith(t, st, testPolicy, decision.Options{})
	var once sync.Once
	free := func() { once.Do(func() { close(st.release) }) }
	t.Cleanup(free) // before the engine's Close, should the test fail
	ctx := context.Background()
	answers := make(chan error, 2)
	decide := func(ref string) {
		_, err := f.eng.Decide(ctx, f.req("courtesy_gift", 10, ref))
		answers <- err
	}
	waitCommit := func(what string) {
		t.Helper()
		select {
		case <-st.committed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was never committed", what)
		}
	}

	go decide("first")
	waitCommit("the first decision")
	go decide("second")
	// The first batch is committed and not durable: the writer must still
	// commit the second.
	waitCommit("the second decision, while the first waited for its sync,")
	select {
	case err := <-answers:
		t.Fatalf("a decision was answered (%v) before its batch was durable", err)
	default:
	}
	free()
	for range 2 {
		select {
		case err := <-answers:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("decisions not answered once durable")
		}
	}
}

// TestGathersWhileTheLastBatchSyncs: what arrives while a batch waits for
// its sync is committed in one batch when that sync ends, not one commit
// per arrival (each commit writes the pages every decision touches again).
func TestGathersWhileTheLastBatchSyncs(t *testing.T) {
	st := &syncGate{Store: storetest.OpenSQLite(t), committed: make(chan int, 16), release: make(chan struct{})}
	// A batch time far longer than the test, so only the sync's end (or a
	// full batch) lets the writer commit.
	f := setupWith(t, st, testPolicy, decision.Options{MaxBatchTime: time.Minute})
	var once sync.Once
	free := func() { once.Do(func() { close(st.release) }) }
	t.Cleanup(free)
	ctx := context.Background()
	const later = 5
	answers := make(chan error, later+1)
	decide := func(ref string) {
		_, err := f.eng.Decide(ctx, f.req("courtesy_gift", 10, ref))
		answers <- err
	}
	go decide("first")
	select {
	case <-st.committed:
	case <-time.After(10 * time.Second):
		t.Fatal("the first decision was never committed")
	}
	for i := range later {
		go decide(fmt.Sprint("later-", i))
	}
	select {
	case n := <-st.committed:
		t.Fatalf("a batch of %d was committed while the first batch's sync was still running", n)
	case <-time.After(300 * time.Millisecond):
	}
	free()
	select {
	case n := <-st.committed:
		if n != later {
			t.Fatalf("after the sync, a batch of %d was committed, want all %d that arrived during it", n, later)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the decisions that arrived during the sync were never committed")
	}
	for range later + 1 {
		select {
		case err := <-answers:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("decisions not answered once durable")
		}
	}
}
