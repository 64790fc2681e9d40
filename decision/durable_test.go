package decision_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/store/storetest"
)

// syncGate holds every committed batch's durability until the test lets it
// through, and reports each commit.
type syncGate struct {
	margen.Store
	committed chan struct{}
	release   chan struct{}
}

func (s *syncGate) CommitBatch(ctx context.Context, q margen.BatchQuery, decide func(*margen.BatchState) (*margen.BatchWrite, error)) (func() error, error) {
	durable, err := s.Store.CommitBatch(ctx, q, decide)
	if err != nil {
		return nil, err
	}
	s.committed <- struct{}{}
	return func() error {
		<-s.release
		return durable()
	}, nil
}

// TestAnsweredOnlyOnceDurable: a decision is answered only after its batch
// is durable, and while one batch waits for the disk the writer commits the
// next one instead of waiting with it.
func TestAnsweredOnlyOnceDurable(t *testing.T) {
	st := &syncGate{Store: storetest.OpenSQLite(t), committed: make(chan struct{}, 8), release: make(chan struct{})}
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
