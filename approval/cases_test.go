package approval_test

import (
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store/storetest"
)

// TestCasesRoutedAndEscalated: a low answer about fl1 opens a case routed
// like a request of fl1's (the default approval route: manager); who may
// see and close it is RightsOn's answer; two services (two processes)
// sweeping at once escalate it to the owners exactly once when its SLA
// passes; the owner closes it.
func TestCasesRoutedAndEscalated(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st1, st2 := openPair(t, e.Name)
			f := newFixture(t, st1, testPolicy)
			ctx := ctxT(t)
			fl1 := f.m["fl1"]
			tokens := margen.NewSurveyTokens([]byte("k"))
			_, hash := tokens.New()
			now := f.clock.Now()
			l := &margen.SurveyLink{OrgID: f.org.ID, TokenHash: hash, MemberID: fl1.ID, Team: fl1.Team, CreatedBy: fl1.ID,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := st1.CreateSurveyLink(ctx, l, fl1.ID, nil); err != nil {
				t.Fatal(err)
			}
			a, _ := margen.NewSurveyAnswer(margen.ScaleNPS, 3, "mal", "es")
			a.OrgID, a.LinkID, a.MemberID, a.Team, a.CreatedAt = f.org.ID, l.ID, fl1.ID, fl1.Team, f.clock.Now()
			if _, err := st1.AnswerSurvey(ctx, &a, margen.SurveyLimits{Cases: margen.CaseRule{SLA: 2 * time.Hour}}); err != nil {
				t.Fatal(err)
			}

			inbox := func(login string) int {
				t.Helper()
				l, err := f.svc.Cases(ctx, f.org, f.m[login], margen.CaseFilter{Status: margen.CaseOpen}, true)
				if err != nil {
					t.Fatal(err)
				}
				return len(l)
			}
			if inbox("mgr") != 1 || inbox("owner") != 1 || inbox("sup") != 0 || inbox("fl1") != 0 {
				t.Fatalf("inboxes: mgr %d owner %d sup %d fl1 %d", inbox("mgr"), inbox("owner"), inbox("sup"), inbox("fl1"))
			}
			all, _ := f.svc.Cases(ctx, f.org, f.m["sup"], margen.CaseFilter{}, false)
			if len(all) != 1 {
				t.Fatalf("a supervisor sees %d cases, want 1 (oversight)", len(all))
			}
			id := all[0].ID
			if _, _, err := f.svc.Case(ctx, f.org, f.m["fl2"], id); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("another frontline member sees the case: %v", err)
			}
			if c, r, err := f.svc.Case(ctx, f.org, fl1, id); err != nil || !r.See || r.Decide || c.AnswerID != a.ID {
				t.Fatalf("the member's own case: %+v %+v %v", c, r, err)
			}
			x := margen.CaseClose{Action: "llamé", Outcome: margen.CaseResolved, Reaction: margen.ReactionPositive}
			if _, err := f.svc.CloseCase(ctx, f.org, f.m["sup"], id, x); !margen.IsCode(err, margen.EFORBIDDEN) {
				t.Fatalf("a supervisor outside the route closes: %v", err)
			}

			// Not due: nothing happens.
			if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("early sweep = %d, %v", n, err)
			}
			f.clock.Add(3 * time.Hour)
			svc2 := f.service(st2, nil)
			var wg sync.WaitGroup
			var mu sync.Mutex
			total := 0
			for range 3 {
				for _, sw := range []func() (int, error){
					func() (int, error) { return f.svc.Sweep(ctx) },
					func() (int, error) { return svc2.Sweep(ctx) },
				} {
					wg.Go(func() {
						n, err := sw()
						if err != nil {
							t.Errorf("sweep: %v", err)
						}
						mu.Lock()
						total += n
						mu.Unlock()
					})
				}
			}
			wg.Wait()
			if total != 1 {
				t.Fatalf("escalated %d times, want exactly once", total)
			}
			if inbox("mgr") != 0 || inbox("owner") != 1 {
				t.Fatalf("after escalation: mgr %d owner %d", inbox("mgr"), inbox("owner"))
			}
			if _, r, err := f.svc.Case(ctx, f.org, f.m["mgr"], id); err != nil || !r.See || r.Decide {
				t.Fatalf("the earlier route still sees it, no longer closes it: %+v %v", r, err)
			}
			c, err := f.svc.CloseCase(ctx, f.org, f.m["owner"], id, x)
			if err != nil || c.Status != margen.CaseClosed || c.ClosedBy != f.m["owner"].ID {
				t.Fatalf("owner closes: %+v %v", c, err)
			}
		})
	}
}
