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

// gated is an engine on a syncGate: decide sends a decision from its own
// goroutine, its answer going to answers; commit waits for the next commit
// and returns its size; free lets every sync through (also at cleanup,
// before the engine's Close, should the test fail); answered waits for n
// answers, all of them successes.
type gated struct {
	t       *testing.T
	st      *syncGate
	f       *fixture
	answers chan error
	once    sync.Once
}

func newGated(t *testing.T, opt decision.Options) *gated {
	st := &syncGate{Store: storetest.OpenSQLite(t), committed: make(chan int, 16), release: make(chan struct{})}
	g := &gated{t: t, st: st, f: setupWith(t, st, testPolicy, opt), answers: make(chan error, 16)}
	t.Cleanup(g.free)
	return g
}

func (g *gated) free() { g.once.Do(func() { close(g.st.release) }) }

func (g *gated) decide(ref string) {
	go func() {
		_, err := g.f.eng.Decide(context.Background(), g.f.req("courtesy_gift", 10, ref))
		g.answers <- err
	}()
}

func (g *gated) commit(what string) int {
	g.t.Helper()
	select {
	case n := <-g.st.committed:
		return n
	case <-time.After(10 * time.Second):
		g.t.Fatalf("%s was never committed", what)
		return 0
	}
}

func (g *gated) answered(n int) {
	g.t.Helper()
	for range n {
		select {
		case err := <-g.answers:
			if err != nil {
				g.t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			g.t.Fatal("decisions not answered once durable")
		}
	}
}

// TestAnsweredOnlyOnceDurable: a decision is answered only after its batch
// is durable, and while one batch waits for the disk the writer commits the
// next one (after at most MaxBatchTime) instead of waiting with it.
func TestAnsweredOnlyOnceDurable(t *testing.T) {
	g := newGated(t, decision.Options{})
	g.decide("first")
	g.commit("the first decision")
	g.decide("second")
	// The first batch is committed and not durable: the writer must still
	// commit the second.
	g.commit("the second decision, while the first waited for its sync,")
	select {
	case err := <-g.answers:
		t.Fatalf("a decision was answered (%v) before its batch was durable", err)
	default:
	}
	g.free()
	g.answered(2)
}

// TestGathersWhileTheLastBatchSyncs: what arrives while a batch waits for
// its sync is committed in one batch when that sync ends, not one commit
// per arrival (each commit writes the pages every decision touches again).
func TestGathersWhileTheLastBatchSyncs(t *testing.T) {
	// A batch time far longer than the test, so only the sync's end (or a
	// full batch) lets the writer commit.
	g := newGated(t, decision.Options{MaxBatchTime: time.Minute})
	g.decide("first")
	g.commit("the first decision")
	const later = 5
	for i := range later {
		g.decide(fmt.Sprint("later-", i))
	}
	select {
	case n := <-g.st.committed:
		t.Fatalf("a batch of %d was committed while the first batch's sync was still running", n)
	case <-time.After(300 * time.Millisecond):
	}
	g.free()
	if n := g.commit("the decisions that arrived during the sync"); n != later {
		t.Fatalf("after the sync, a batch of %d was committed, want all %d that arrived during it", n, later)
	}
	g.answered(later + 1)
}
