package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
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
			if _, err := db.EscalateCase(ctx, o.ID, c.ID, approval.CaseEscalator(0, "", "manager", now.Add(59*time.Minute))); !margen.IsCode(err, margen.ECONFLICT) {
				t.Fatalf("early escalation: %v", err)
			}
			// Each step, due: two "processes" escalate concurrently, 10
			// tries each; exactly one succeeds per step; the chain goes
			// supervisor -> manager -> owner, one SLA (1h) per step.
			at := now.Add(2 * time.Hour).Truncate(time.Microsecond)
			for lvl, step := range []struct{ from, to string }{{"", "manager"}, {"manager", "owner"}} {
				due, _ := db2.DueCases(ctx, at, 10)
				if len(due) != 1 || due[0].ID != c.ID || due[0].Level != lvl || due[0].Role != step.from {
					t.Fatalf("step %d: due = %+v", lvl, due)
				}
				var escalated atomic.Int32
				for i := range 20 {
					wg.Go(func() {
						st := db
						if i%2 == 1 {
							st = db2
						}
						switch _, err := st.EscalateCase(ctx, o.ID, c.ID, approval.CaseEscalator(lvl, step.from, step.to, at)); {
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
					t.Fatalf("step %d escalated %d times, want 1", lvl, escalated.Load())
				}
				got, err := db.GetCase(ctx, o.ID, c.ID)
				if err != nil || got.Role != step.to || got.Level != lvl+1 || got.EscalatedAt == nil || !got.EscalatedAt.Equal(at) ||
					got.Status != margen.CaseOpen || !got.DueAt.Equal(at.Add(time.Hour)) || got.Earlier[lvl] != step.from {
					t.Fatalf("step %d: escalated case = %+v, %v", lvl, got, err)
				}
				at = at.Add(90 * time.Minute)
			}
			if due, _ := db.DueCases(ctx, at.Add(time.Hour), 10); len(due) != 0 {
				t.Fatalf("due again once with the owners: %+v", due)
			}
			if n := countAudit(t, db, o.ID, margen.ActionCaseEscalate); n != 2 {
				t.Fatalf("%d case.escalate entries, want 2", n)
			}
			later := at

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

// countAudit counts an organisation's audit entries of one action.
func countAudit(t *testing.T, db interface {
	ListAudit(context.Context, string, int64, int) ([]margen.AuditEntry, error)
}, orgID string, action margen.AuditAction) int {
	t.Helper()
	n := 0
	for after := int64(0); ; {
		es, err := db.ListAudit(context.Background(), orgID, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Action == action {
				n++
			}
			after = e.Seq
		}
		if len(es) < 500 {
			return n
		}
	}
}

// TestCaseSettings: an organisation's own thresholds and SLA are validated,
// audited and sealed, and decide which answers open a case and when it is
// due; settings it leaves unset take the server's rule.
func TestCaseSettings(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.OpenDSN(t, e.DSN(t))
			tokens := margen.NewSurveyTokens([]byte("test key"))
			o := testsupport.NewOrg(t, db, testsupport.OrgOptions{Members: []testsupport.Member{{Login: "ana"}}})
			ana := o.Members["ana"]
			now := time.Now().UTC().Truncate(time.Microsecond)
			server := margen.CaseRule{SLA: time.Hour} // the flags: CSAT <= 2, NPS <= 6
			answer := func(scale string, score int) *margen.FollowUpCase {
				t.Helper()
				_, hash := tokens.New()
				l := &margen.SurveyLink{OrgID: o.ID, TokenHash: hash, MemberID: ana.ID, CreatedBy: ana.ID,
					CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := db.CreateSurveyLink(ctx, l, ana.ID, nil); err != nil {
					t.Fatal(err)
				}
				a, err := margen.NewSurveyAnswer(scale, score, "", "es")
				if err != nil {
					t.Fatal(err)
				}
				a.OrgID, a.LinkID, a.MemberID, a.CreatedAt = o.ID, l.ID, ana.ID, now
				if _, err := db.AnswerSurvey(ctx, &a, margen.SurveyLimits{Cases: server}); err != nil {
					t.Fatal(err)
				}
				cs, err := db.ListCases(ctx, o.ID, margen.CaseFilter{AnswerID: a.ID})
				if err != nil || len(cs) > 1 {
					t.Fatalf("cases %+v, %v", cs, err)
				}
				if len(cs) == 0 {
					return nil
				}
				return &cs[0]
			}
			ip := func(v int) *int { return &v }

			// Nothing set: the server's rule.
			if x, err := db.CaseSettings(ctx, o.ID); err != nil || x.CSATMax != nil || x.NPSMax != nil || x.SLA != 0 {
				t.Fatalf("unset settings = %+v, %v", x, err)
			}
			if c := answer(margen.ScaleCSAT, 3); c != nil {
				t.Fatalf("CSAT 3 opened a case under the flags: %+v", c)
			}
			if c := answer(margen.ScaleNPS, 6); c == nil || !c.DueAt.Equal(now.Add(time.Hour)) {
				t.Fatalf("NPS 6 under the flags: %+v", c)
			}

			// Out of bounds: refused, nothing stored.
			for _, bad := range []margen.CaseSettings{{CSATMax: ip(5)}, {CSATMax: ip(0)}, {NPSMax: ip(10)}, {NPSMax: ip(-2)},
				{SLA: time.Minute}, {SLA: 31 * 24 * time.Hour}} {
				if err := db.SetCaseSettings(ctx, o.ID, bad, "boss"); !margen.IsCode(err, margen.EINVALID) {
					t.Fatalf("%+v accepted: %v", bad, err)
				}
			}
			// CSAT <= 3, NPS: only a 0, SLA 2h.
			if err := db.SetCaseSettings(ctx, o.ID, margen.CaseSettings{CSATMax: ip(3), NPSMax: ip(0), SLA: 2 * time.Hour}, "boss"); err != nil {
				t.Fatal(err)
			}
			if x, err := db.CaseSettings(ctx, o.ID); err != nil || *x.CSATMax != 3 || *x.NPSMax != 0 || x.SLA != 2*time.Hour {
				t.Fatalf("settings = %+v, %v", x, err)
			}
			if c := answer(margen.ScaleCSAT, 3); c == nil || !c.DueAt.Equal(now.Add(2*time.Hour)) {
				t.Fatalf("CSAT 3 under the organisation's 3: %+v", c)
			}
			if c := answer(margen.ScaleNPS, 1); c != nil {
				t.Fatalf("NPS 1 opened a case under the organisation's 0: %+v", c)
			}
			if c := answer(margen.ScaleNPS, 0); c == nil {
				t.Fatal("NPS 0 opened no case under the organisation's 0")
			}
			// NPS none, CSAT and SLA back to the flags.
			if err := db.SetCaseSettings(ctx, o.ID, margen.CaseSettings{NPSMax: ip(-1)}, "boss"); err != nil {
				t.Fatal(err)
			}
			if c := answer(margen.ScaleNPS, 0); c != nil {
				t.Fatalf("NPS 0 opened a case under none: %+v", c)
			}
			if c := answer(margen.ScaleCSAT, 2); c == nil || !c.DueAt.Equal(now.Add(time.Hour)) {
				t.Fatalf("CSAT 2 back under the flags: %+v", c)
			}
			if n := countAudit(t, db, o.ID, margen.ActionCaseSettings); n != 2 {
				t.Fatalf("%d case.settings entries, want 2", n)
			}
			if rep, err := db.CheckAudit(ctx, o.ID); err != nil || !rep.OK() {
				t.Fatalf("audit after settings: %+v, %v", rep, err)
			}
		})
	}
}
