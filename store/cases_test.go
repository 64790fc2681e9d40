package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

// TestCasesOpenEscalateClose: concurrent answers on one link store one
// answer and open exactly one case (a high answer none); a case escalates
// exactly once when its SLA passes even with two stores (two processes) on
// one database sweeping at once; it closes once; the trail seals it all.
func TestCasesOpenEscalateClose(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := e.DSN(t)
			db := storetest.OpenDSN(t, dsn)
			db2 := storetest.OpenDSN(t, dsn)
			tokens := margen.NewSurveyTokens([]byte("test key"))
			o := testsupport.NewOrg(t, db, testsupport.OrgOptions{Members: []testsupport.Member{{Login: "ana"}}})
			ana := o.Members["ana"]
			now := time.Now().UTC()
			rule := margen.CaseRule{SLA: time.Hour}

			link := func() *margen.SurveyLink {
				_, hash := tokens.New()
				l := &margen.SurveyLink{OrgID: o.ID, TokenHash: hash, MemberID: ana.ID, Team: ana.Team, CreatedBy: ana.ID,
					CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := db.CreateSurveyLink(ctx, l, ana.ID, nil); err != nil {
					t.Fatal(err)
				}
				return l
			}
			answer := func(st interface {
				AnswerSurvey(context.Context, *margen.SurveyAnswer, margen.SurveyLimits) (string, error)
			}, l *margen.SurveyLink, score int) error {
				a, err := margen.NewSurveyAnswer(margen.ScaleCSAT, score, "", "es")
				if err != nil {
					return err
				}
				a.OrgID, a.LinkID, a.MemberID, a.Team, a.CreatedAt = o.ID, l.ID, ana.ID, ana.Team, now
				_, err = st.AnswerSurvey(ctx, &a, margen.SurveyLimits{Cases: rule})
				return err
			}

			// A high answer opens no case.
			if err := answer(db, link(), 4); err != nil {
				t.Fatal(err)
			}
			// 20 concurrent low answers on one link, through two stores.
			low := link()
			var wg sync.WaitGroup
			var stored atomic.Int32
			for i := range 20 {
				wg.Go(func() {
					st := db
					if i%2 == 1 {
						st = db2
					}
					switch err := answer(st, low, 1); {
					case err == nil:
						stored.Add(1)
					case margen.IsCode(err, margen.ECONFLICT):
					default:
						t.Errorf("answer: %v", err)
					}
				})
			}
			wg.Wait()
			cases, err := db.ListCases(ctx, o.ID, margen.CaseFilter{})
			if err != nil || stored.Load() != 1 || len(cases) != 1 {
				t.Fatalf("stored %d answers and %d cases (%v): want one of each", stored.Load(), len(cases), err)
			}
			c := cases[0]
			if c.Status != margen.CaseOpen || c.MemberID != ana.ID || c.Score != 1 || c.Role != margen.CaseRoleSupervisor ||
				!c.DueAt.Equal(now.Add(time.Hour).Truncate(time.Microsecond)) {
				t.Fatalf("case = %+v", c)
			}

			// Not due yet: nothing to escalate, and escalating is refused.
			if due, _ := db.DueCases(ctx, now.Add(59*time.Minute), 10); len(due) != 0 {
				t.Fatalf("due early: %+v", due)
			}
			if _, err := db.EscalateCase(ctx, o.ID, c.ID, now.Add(59*time.Minute)); !margen.IsCode(err, margen.ECONFLICT) {
				t.Fatalf("early escalation: %v", err)
			}
			// Due: two "processes" escalate concurrently, 10 tries each;
			// exactly one succeeds.
			later := now.Add(2 * time.Hour)
			if due, _ := db2.DueCases(ctx, later, 10); len(due) != 1 || due[0].ID != c.ID {
				t.Fatalf("due = %+v", due)
			}
			var escalated atomic.Int32
			for i := range 20 {
				wg.Go(func() {
					st := db
					if i%2 == 1 {
						st = db2
					}
					switch _, err := st.EscalateCase(ctx, o.ID, c.ID, later); {
					case err == nil:
						escalated.Add(1)
					case margen.IsCode(err, margen.ECONFLICT):
					default:
						t.Errorf("escalate: %v", err)
					}
				})
			}
			wg.Wait()
			if escalated.Load() != 1 {
				t.Fatalf("escalated %d times, want 1", escalated.Load())
			}
			got, err := db.GetCase(ctx, o.ID, c.ID)
			if err != nil || got.Role != margen.CaseRoleOwner || got.EscalatedAt == nil || got.Status != margen.CaseOpen {
				t.Fatalf("escalated case = %+v, %v", got, err)
			}
			if due, _ := db.DueCases(ctx, later.Add(time.Hour), 10); len(due) != 0 {
				t.Fatalf("due again after escalation: %+v", due)
			}

			// Closing: bad input refused, then closed once.
			if _, err := db.CloseCase(ctx, o.ID, c.ID, margen.CaseClose{Action: " ", Outcome: margen.CaseResolved,
				Reaction: margen.ReactionPositive}, ana.ID, later); !margen.IsCode(err, margen.EINVALID) {
				t.Fatalf("empty action: %v", err)
			}
			x := margen.CaseClose{Action: "Called back, refunded", Outcome: margen.CaseResolved, Reaction: margen.ReactionPositive}
			closed, err := db.CloseCase(ctx, o.ID, c.ID, x, "sup", later)
			if err != nil || closed.Status != margen.CaseClosed || closed.ClosedBy != "sup" || closed.Action != x.Action {
				t.Fatalf("closed = %+v, %v", closed, err)
			}
			if _, err := db2.CloseCase(ctx, o.ID, c.ID, x, "sup", later); !margen.IsCode(err, margen.ECONFLICT) {
				t.Fatalf("closed twice: %v", err)
			}
			if _, err := db.CloseCase(ctx, o.ID, "case_missing", x, "sup", later); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("missing case: %v", err)
			}
			if l, _ := db.ListCases(ctx, o.ID, margen.CaseFilter{Status: margen.CaseOpen}); len(l) != 0 {
				t.Fatalf("open cases after close: %+v", l)
			}
			if rep, err := db.CheckAudit(ctx, o.ID); err != nil || !rep.OK() {
				t.Fatalf("audit after cases: %+v, %v", rep, err)
			}
		})
	}
}
