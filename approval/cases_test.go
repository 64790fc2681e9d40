package approval_test

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/policy"
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

// chainPolicy routes requests (and cases) to a supervisor who escalates to
// a manager on timeout: a case goes supervisor -> manager -> owners.
var chainPolicy = strings.Replace(testPolicy, `approval:
  approver: manager
  sla: 30m
  on_timeout: deny`, `approval:
  approver: supervisor
  sla: 30m
  on_timeout: escalate
  escalate_to: manager`, 1)

// TestCaseEscalatesAlongTheChain: a case escalates like a request, one step
// per SLA (supervisor of the member's team, then manager, then owners), each
// step exactly once with two services (two processes) sweeping at once; at
// each step who may close it is who it is routed to, the earlier roles
// still see it, others do not.
func TestCaseEscalatesAlongTheChain(t *testing.T) {
	if !strings.Contains(chainPolicy, "escalate_to: manager\ngrants") {
		t.Fatal("chainPolicy did not replace the approval route")
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st1, st2 := openPair(t, e.Name)
			f := newFixture(t, st1, chainPolicy)
			svc2 := f.service(st2, nil)
			ctx := ctxT(t)
			fl1 := f.m["fl1"]
			_, hash := margen.NewSurveyTokens([]byte("k")).New()
			now := f.clock.Now()
			l := &margen.SurveyLink{OrgID: f.org.ID, TokenHash: hash, MemberID: fl1.ID, Team: fl1.Team, CreatedBy: fl1.ID,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := st1.CreateSurveyLink(ctx, l, fl1.ID, nil); err != nil {
				t.Fatal(err)
			}
			a, _ := margen.NewSurveyAnswer(margen.ScaleCSAT, 1, "", "es")
			a.OrgID, a.LinkID, a.MemberID, a.Team, a.CreatedAt = f.org.ID, l.ID, fl1.ID, fl1.Team, now
			if _, err := st1.AnswerSurvey(ctx, &a, margen.SurveyLimits{Cases: margen.CaseRule{SLA: time.Hour}}); err != nil {
				t.Fatal(err)
			}
			cs, err := f.svc.Cases(ctx, f.org, f.m["owner"], margen.CaseFilter{}, false)
			if err != nil || len(cs) != 1 {
				t.Fatalf("cases %+v, %v", cs, err)
			}
			id := cs[0].ID
			// rights: login -> "d" (may close), "s" (sees only), "" (missing).
			rights := func() map[string]string {
				out := map[string]string{}
				for _, login := range []string{"sup", "sup2", "mgr", "owner", "fl1", "fl2", "fl3"} {
					_, r, err := f.svc.Case(ctx, f.org, f.m[login], id)
					switch {
					case margen.IsCode(err, margen.ENOTFOUND):
						out[login] = ""
					case err != nil:
						t.Fatal(err)
					case r.Decide:
						out[login] = "d"
					default:
						out[login] = "s"
					}
				}
				return out
			}
			// Supervisors and above see every case (oversight), as for
			// requests; the member sees their own; fl2 and fl3 never. A
			// manager's role reaches the supervisor's: mgr may close from
			// the start, as for a request routed to a supervisor.
			steps := []struct {
				role   string
				rights map[string]string
			}{
				{"", map[string]string{"sup": "d", "sup2": "s", "mgr": "d", "owner": "d", "fl1": "s", "fl2": "", "fl3": ""}},
				{"supervisor", nil}, // never stored: the first step names the default route ""
				{"manager", map[string]string{"sup": "s", "sup2": "s", "mgr": "d", "owner": "d", "fl1": "s", "fl2": "", "fl3": ""}},
				{"owner", map[string]string{"sup": "s", "sup2": "s", "mgr": "s", "owner": "d", "fl1": "s", "fl2": "", "fl3": ""}},
			}
			steps = append(steps[:1], steps[2:]...)
			for i, step := range steps {
				c, _, err := f.svc.Case(ctx, f.org, f.m["owner"], id)
				if err != nil || c.Role != step.role || c.Level != i {
					t.Fatalf("step %d: case %+v, %v; want role %q", i, c, err, step.role)
				}
				if got := rights(); !maps.Equal(got, step.rights) {
					t.Fatalf("step %d (%s): rights %v, want %v", i, step.role, got, step.rights)
				}
				if i == len(steps)-1 {
					break
				}
				// Not due a minute early; due at the SLA: each of two
				// services sweeps three times at once, one escalation.
				f.clock.Add(59 * time.Minute)
				if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
					t.Fatalf("step %d: early sweep %d, %v", i, n, err)
				}
				f.clock.Add(time.Minute)
				var wg sync.WaitGroup
				var mu sync.Mutex
				total := 0
				for range 3 {
					for _, svc := range []*approval.Service{f.svc, svc2} {
						wg.Go(func() {
							n, err := svc.Sweep(ctx)
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
					t.Fatalf("step %d: escalated %d times, want 1", i, total)
				}
			}
			// With the owners: no further step, however late.
			f.clock.Add(48 * time.Hour)
			if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("sweep at the owners: %d, %v", n, err)
			}
			c, _, _ := f.svc.Case(ctx, f.org, f.m["owner"], id)
			if !slices.Equal(c.Earlier, []string{"", "manager"}) {
				t.Fatalf("earlier = %q", c.Earlier)
			}
		})
	}
}

// TestCaseEscalationRule: the pure step refuses a case that is closed, not
// due, with the owners or moved on, and otherwise moves it one level up,
// due one SLA (the time its last step had) later.
func TestCaseEscalationRule(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	esc := t0.Add(2 * time.Hour)
	base := margen.FollowUpCase{ID: "case_1", OrgID: "org", Status: margen.CaseOpen, Role: "manager", Level: 1,
		Earlier: []string{""}, CreatedAt: t0, EscalatedAt: &esc, DueAt: esc.Add(3 * time.Hour)}
	due := esc.Add(4 * time.Hour)
	for _, tc := range []struct {
		name  string
		edit  func(*margen.FollowUpCase)
		level int
		from  string
		at    time.Time
	}{
		{"closed", func(c *margen.FollowUpCase) { c.Status = margen.CaseClosed }, 1, "manager", due},
		{"not due", func(*margen.FollowUpCase) {}, 1, "manager", esc.Add(3*time.Hour - time.Second)},
		{"with the owners", func(c *margen.FollowUpCase) { c.Role = margen.CaseRoleOwner }, 1, margen.CaseRoleOwner, due},
		{"another level", func(*margen.FollowUpCase) {}, 0, "manager", due},
		{"another role", func(*margen.FollowUpCase) {}, 1, "", due},
	} {
		c := base
		tc.edit(&c)
		if _, err := approval.CaseEscalation(&c, tc.level, tc.from, "owner", tc.at); !margen.IsCode(err, margen.ECONFLICT) {
			t.Errorf("%s: %v, want ECONFLICT", tc.name, err)
		}
	}
	c := base
	w, err := approval.CaseEscalation(&c, 1, "manager", "owner", due)
	if err != nil {
		t.Fatal(err)
	}
	n := w.Case
	if n.Role != "owner" || n.Level != 2 || !slices.Equal(n.Earlier, []string{"", "manager"}) || !n.EscalatedAt.Equal(due) ||
		!n.DueAt.Equal(due.Add(3*time.Hour)) || w.Step.Level != 1 || w.Step.FromRole != "manager" || w.Step.ToRole != "owner" ||
		w.Event.FromRole != "manager" || w.Event.ApproverRole != "owner" || w.Event.Level != 2 {
		t.Fatalf("write = %+v", w)
	}
	if len(c.Earlier) != 1 {
		t.Fatal("the rule changed the case it read")
	}
}

// TestCaseNext: the chain a case follows is the approval routes'
// escalate_to, else the owners.
func TestCaseNext(t *testing.T) {
	pol, err := policy.Parse([]byte(chainPolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role  string
		level int
		want  string
	}{
		{"supervisor", 0, "manager"}, // the default route escalates to manager
		{"manager", 1, "owner"},      // no route of manager's escalates
		{"owner", 2, "owner"},        // nowhere above
		{"supervisor", 7, "owner"},   // MaxCaseSteps
		{"nobody", 0, "owner"},       // no route names it
	} {
		if got := approval.CaseNext(pol, tc.role, tc.level); got != tc.want {
			t.Errorf("CaseNext(%s, %d) = %s, want %s", tc.role, tc.level, got, tc.want)
		}
	}
	if got := approval.CaseNext(nil, "supervisor", 0); got != "owner" {
		t.Errorf("no policy: %s", got)
	}
}
