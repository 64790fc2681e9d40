package approval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/policy"
	"github.com/margenhq/margen/store/storetest"
)

// TestSelfApprovalEveryRole: nobody answers their own request, whatever
// their role or access, approving or rejecting.
func TestSelfApprovalEveryRole(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e.Open(t), testPolicy)
			for _, c := range []struct {
				login  string
				amount int64
				role   string // where the request goes
			}{
				{"fl1", 3000, "supervisor"},
				{"sup", 8000, "manager"},
				{"mgr", 30000, "manager"},
				{"owner", 30000, "manager"},
			} {
				a := f.request(c.login, "refund", c.amount)
				if a.ApproverRole != c.role {
					t.Fatalf("%s's request routed to %q, want %q", c.login, a.ApproverRole, c.role)
				}
				for _, approve := range []bool{true, false} {
					_, err := f.answer(c.login, a.ID, approve)
					wantErr(t, err, margen.EFORBIDDEN, "error.self_approval")
				}
				if got := f.approval(a.ID); got.Status != margen.ApprovalPending || got.Level != 0 {
					t.Fatalf("%s's own answer changed the request: %+v", c.login, got)
				}
			}
			// An owner's own exception request too.
			_, x, err := f.svc.RequestException(ctxT(t), f.org, f.m["owner"], approval.ExceptionRequest{Description: "staff ATM"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.answer("owner", x.ID, true)
			wantErr(t, err, margen.EFORBIDDEN, "error.self_approval")
			f.checkLedger()
		})
	}
}

// TestOverLimitEveryRole: an approver may approve only within their own
// latitude; beyond it the request escalates, for every role of
// frontline < supervisor < manager (< owner access, unbounded).
func TestOverLimitEveryRole(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e.Open(t), testPolicy)

			// frontline: cannot approve at all, nor see a peer's request.
			a := f.request("fl1", "refund", 3000)
			_, err := f.answer("fl2", a.ID, true)
			wantErr(t, err, margen.ENOTFOUND, "error.not_found")
			_, err = f.answer("fl2", a.ID, false)
			wantErr(t, err, margen.ENOTFOUND, "error.not_found")

			// supervisor: 8000 is above their 5000: refused, escalated to
			// their own route (manager); the hold stays.
			a = f.request("fl1", "refund", 8000)
			_, err = f.answer("sup", a.ID, true)
			xe := wantErr(t, err, margen.EFORBIDDEN, "error.approval_beyond_latitude")
			if xe.Args["max"] != int64(5000) || xe.Args["escalated_to"] != "manager" {
				t.Fatalf("supervisor refusal args = %v", xe.Args)
			}
			got := f.approval(a.ID)
			if got.Status != margen.ApprovalPending || got.ApproverRole != "manager" || got.Level != 1 ||
				got.OnTimeout != policy.OnTimeoutDeny || got.EscalateTo != "" {
				t.Fatalf("after the supervisor's refusal: %+v", got)
			}
			// The supervisor cannot try again: it is no longer theirs.
			_, err = f.answer("sup", a.ID, true)
			wantErr(t, err, margen.EFORBIDDEN, "error.not_approver")
			if _, err := f.answer("mgr", a.ID, true); err != nil {
				t.Fatalf("manager approves 8000: %v", err)
			}

			// manager: 30000 is above everyone's latitude but the owners'.
			a = f.request("fl1", "refund", 30000)
			_, err = f.answer("sup", a.ID, true)
			wantErr(t, err, margen.EFORBIDDEN, "error.approval_beyond_latitude")
			_, err = f.answer("mgr", a.ID, true)
			xe = wantErr(t, err, margen.EFORBIDDEN, "error.approval_beyond_latitude")
			if xe.Args["max"] != int64(20000) || xe.Args["escalated_to"] != approval.OwnerRole {
				t.Fatalf("manager refusal args = %v", xe.Args)
			}
			got = f.approval(a.ID)
			if got.ApproverRole != approval.OwnerRole || got.Level != 2 {
				t.Fatalf("after the manager's refusal: %+v", got)
			}
			_, err = f.answer("mgr", a.ID, true)
			wantErr(t, err, margen.EFORBIDDEN, "error.not_approver")
			// owner access: not bounded.
			out, err := f.answer("owner", a.ID, true)
			if err != nil || out.Status != margen.ApprovalApproved || out.ActID == "" {
				t.Fatalf("owner approves: %+v, %v", out, err)
			}
			if k := kinds(f.approval(a.ID)); !slices.Equal(k, []string{"requested", "escalated", "escalated", "approved"}) {
				t.Fatalf("history = %v", k)
			}
			// Exactly once.
			_, err = f.answer("owner", a.ID, false)
			wantErr(t, err, margen.ECONFLICT, "error.approval_already_decided")

			// Rejecting is always allowed to a valid approver, even beyond
			// their latitude.
			a = f.request("fl1", "refund", 30000)
			if out, err := f.answer("sup", a.ID, false); err != nil || out.Status != margen.ApprovalRejected {
				t.Fatalf("supervisor rejects 30000: %+v, %v", out, err)
			}
			f.checkLedger()
		})
	}
}

// TestApprovePostsRejectVoids: approve posts the held amount (and creates
// the act), reject voids it.
func TestApprovePostsRejectVoids(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e.Open(t), testPolicy)
			a := f.request("fl1", "refund", 3000)
			if b := f.balance("fl1"); b != (margen.Balance{Pending: 3000}) {
				t.Fatalf("held: %+v", b)
			}
			idem := &margen.IdemWrite[*margen.Approval]{
				Record:  margen.Idempotency{OrgID: f.org.ID, MemberID: f.m["sup"].ID, Key: "k1", RequestHash: "h", CreatedAt: t0},
				Respond: func(a *margen.Approval) ([]byte, error) { return json.Marshal(a) },
			}
			out, err := f.svc.Answer(ctxT(t), f.org, f.m["sup"], a.ID, true, "ok, good customer", idem)
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != margen.ApprovalApproved || out.DecidedBy != f.m["sup"].ID || out.ActID == "" || out.Comment != "ok, good customer" {
				t.Fatalf("approved: %+v", out)
			}
			if b := f.balance("fl1"); b != (margen.Balance{Posted: 3000}) {
				t.Fatalf("after approve: %+v", b)
			}
			d, err := f.st.GetDecision(ctxT(t), f.org.ID, a.DecisionID)
			if err != nil || d.ActID != out.ActID {
				t.Fatalf("decision not linked to the act: %+v %v", d, err)
			}
			act, err := f.st.GetAct(ctxT(t), f.org.ID, out.ActID)
			if err != nil || act.Amount != 3000 || act.MemberID != f.m["fl1"].ID {
				t.Fatalf("act: %+v %v", act, err)
			}
			rec, err := f.st.Idempotency(ctxT(t), f.org.ID, f.m["sup"].ID, "k1")
			if err != nil {
				t.Fatalf("idempotency record: %+v %v", rec, err)
			}
			var stored margen.Approval
			if err := json.Unmarshal(rec.Response, &stored); err != nil || stored.ID != a.ID || stored.Status != margen.ApprovalApproved || stored.ActID != out.ActID {
				t.Fatalf("idempotency response: %s %v", rec.Response, err)
			}

			a = f.request("fl1", "refund", 2000)
			if out, err := f.answer("sup", a.ID, false); err != nil || out.Status != margen.ApprovalRejected {
				t.Fatalf("reject: %+v %v", out, err)
			}
			if b := f.balance("fl1"); b != (margen.Balance{Posted: 3000}) {
				t.Fatalf("after reject: %+v", b)
			}
			f.mu.Lock()
			if f.observed["approved"] != 1 || f.observed["rejected"] != 1 || f.notified != 2 {
				t.Fatalf("observed %v, notified %d", f.observed, f.notified)
			}
			f.mu.Unlock()
			f.checkLedger()
		})
	}
}

// TestException: a request no grant covers goes to the default approval
// route, or to the owners when the policy has none; it is answered like
// any other and holds no budget.
func TestException(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st := e.Open(t)
			f := newFixture(t, st, testPolicy)
			ctx := ctxT(t)
			x := approval.ExceptionRequest{Description: "Let a stranded customer use the staff ATM",
				Customer: decision.CustomerInput{Ref: "tourist-1", Name: "Tourist"}, Reason: "card blocked",
				Context: json.RawMessage(`{"channel":"counter"}`)}
			idem := &margen.IdemWrite[approval.ExceptionResult]{
				Record:  margen.Idempotency{OrgID: f.org.ID, MemberID: f.m["fl1"].ID, Key: "x1", RequestHash: "h", CreatedAt: t0},
				Respond: func(x approval.ExceptionResult) ([]byte, error) { return []byte(x.Approval.ID), nil },
			}
			d, a, err := f.svc.RequestException(ctx, f.org, f.m["fl1"], x, idem)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != margen.OutcomeNeedsApproval || d.ApprovalID != a.ID || a.Kind != margen.ApprovalKindException ||
				a.ApproverRole != "manager" || a.SLA != 30*time.Minute || a.OnTimeout != policy.OnTimeoutDeny || a.Amount != 0 {
				t.Fatalf("exception: %+v / %+v", d, a)
			}
			if c, err := st.CustomerByID(ctx, f.org.ID, d.CustomerID); err != nil || c.Ref != "tourist-1" {
				t.Fatalf("customer: %+v %v", c, err)
			}
			if rec, err := st.Idempotency(ctx, f.org.ID, f.m["fl1"].ID, "x1"); err != nil || string(rec.Response) != a.ID {
				t.Fatalf("idempotency: %+v %v", rec, err)
			}
			// In the manager's inbox, not the supervisor's; in fl1's requests.
			if p := f.ids(f.svc.Pending(ctx, f.org, f.m["mgr"], margen.Page{})); !slices.Contains(p, a.ID) {
				t.Fatalf("manager's pending %v lacks %s", p, a.ID)
			}
			if p := f.ids(f.svc.Pending(ctx, f.org, f.m["sup"], margen.Page{})); slices.Contains(p, a.ID) {
				t.Fatalf("supervisor sees %s", a.ID)
			}
			if p := f.ids(f.svc.Mine(ctx, f.org, f.m["fl1"], margen.Page{})); !slices.Equal(p, []string{a.ID}) {
				t.Fatalf("fl1's requests = %v", p)
			}
			_, err = f.answer("sup", a.ID, true)
			wantErr(t, err, margen.EFORBIDDEN, "error.not_approver")
			out, err := f.answer("mgr", a.ID, true)
			if err != nil || out.Status != margen.ApprovalApproved {
				t.Fatalf("manager approves the exception: %+v %v", out, err)
			}
			if k := kinds(f.approval(a.ID)); !slices.Equal(k, []string{"requested", "approved"}) {
				t.Fatalf("history = %v", k)
			}

			_, _, err = f.svc.RequestException(ctx, f.org, f.m["fl1"], approval.ExceptionRequest{}, nil)
			wantErr(t, err, margen.EINVALID, "error.required")
			_, _, err = f.svc.RequestException(ctx, f.org, f.m["fl1"], approval.ExceptionRequest{Description: "x", Context: json.RawMessage(`[1]`)}, nil)
			wantErr(t, err, margen.EINVALID, "error.context_object")

			// Without a default route: the owners, 1h, deny on timeout.
			g := newFixture(t, st, noDefaultPolicy)
			_, b, err := g.svc.RequestException(ctx, g.org, g.m["fl1"], approval.ExceptionRequest{Description: "open late"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b.ApproverRole != approval.OwnerRole || b.SLA != time.Hour || b.OnTimeout != policy.OnTimeoutDeny {
				t.Fatalf("exception without default route: %+v", b)
			}
			_, err = g.answer("mgr", b.ID, true)
			wantErr(t, err, margen.EFORBIDDEN, "error.not_approver")
			if p := g.ids(g.svc.Pending(ctx, g.org, g.m["owner"], margen.Page{})); !slices.Equal(p, []string{b.ID}) {
				t.Fatalf("owner's pending = %v", p)
			}
			// Unanswered for an hour: denied.
			g.clock.Add(time.Hour + time.Second)
			if n, err := g.svc.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep: %d %v", n, err)
			}
			if got := g.approval(b.ID); got.Status != margen.ApprovalExpired || got.DecidedBy != approval.SystemActor {
				t.Fatalf("after the SLA: %+v", got)
			}
			f.checkLedger()
			g.checkLedger()
		})
	}
}

func (f *fixture) ids(as []margen.Approval, err error) []string {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// TestRouting: requests go to the requester's team first, then the
// organisation; the inbox is oldest due first and pages; the live stream's
// filter shows an event to whom it concerns.
func TestRouting(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e.Open(t), testPolicy)
			ctx := ctxT(t)
			// fl1 (team a, with a supervisor), fl3 (team c, none).
			a1 := f.request("fl1", "refund", 3000)
			f.clock.Add(time.Minute)
			a3 := f.request("fl3", "refund", 3000)
			f.clock.Add(time.Minute)
			a2 := f.request("fl1", "gift", 500) // SLA 5m: due before a1
			want := map[string][]string{
				"sup":   {a2.ID, a1.ID, a3.ID}, // team a, and team c which has no supervisor
				"sup2":  {a3.ID},               // team b: only what team c cannot serve
				"mgr":   {a2.ID, a1.ID, a3.ID}, // no team: organisation-wide
				"owner": {a2.ID, a1.ID, a3.ID},
				"fl2":   {},
				"fl1":   {}, // never their own
			}
			for login, w := range want {
				got := f.ids(f.svc.Pending(ctx, f.org, f.m[login], margen.Page{}))
				if !slices.Equal(got, w) {
					t.Errorf("%s's pending = %v, want %v", login, got, w)
				}
			}
			// Paging by the last id seen.
			p1 := f.ids(f.svc.Pending(ctx, f.org, f.m["mgr"], margen.Page{Limit: 2}))
			p2 := f.ids(f.svc.Pending(ctx, f.org, f.m["mgr"], margen.Page{Limit: 2, After: p1[len(p1)-1]}))
			if !slices.Equal(append(p1, p2...), want["mgr"]) {
				t.Fatalf("pages %v + %v", p1, p2)
			}

			// The live stream's filter, over the events of the audit trail.
			audit, err := f.st.ListAudit(ctx, f.org.ID, 0, 500)
			if err != nil {
				t.Fatal(err)
			}
			var req, made events.Event
			for i := range audit {
				evs, err := events.FromAudit(&audit[i])
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					if ev.Data.Route().ApprovalID == a1.ID && ev.Type == margen.EventApprovalRequested {
						req = ev
					}
					if ev.Data.Route().ApprovalID == a1.ID && ev.Type == margen.EventDecisionMade {
						made = ev
					}
				}
			}
			if req.Type == "" || made.Type == "" {
				t.Fatal("events of a1 not found")
			}
			vis := func(login string, ev events.Event) bool {
				return f.svc.Visible(ctx, f.org, f.m[login], ev)
			}
			// sup2 (team b) may not answer it, but sees it as everyone with
			// supervisor access does (oversight).
			for login, w := range map[string]bool{"fl1": true, "sup": true, "mgr": true, "owner": true, "sup2": true, "fl2": false} {
				if vis(login, req) != w {
					t.Errorf("%s sees a1's request: %v, want %v", login, !w, w)
				}
			}
			if vis("fl2", made) || !vis("fl1", made) || !vis("sup2", made) {
				t.Error("decision.made visibility: the member and supervisors and above only")
			}
			// Answered: the requester learns it.
			if _, err := f.answer("sup", a1.ID, true); err != nil {
				t.Fatal(err)
			}
			audit, _ = f.st.ListAudit(ctx, f.org.ID, audit[len(audit)-1].Seq, 500)
			evs, err := events.FromAudit(&audit[len(audit)-1])
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Type != margen.EventApprovalDecided || !vis("fl1", evs[0]) || vis("fl2", evs[0]) || !vis("sup2", evs[0]) {
				t.Fatalf("approval.decided events %+v", evs)
			}
		})
	}
}

// TestSLAOnTimeout: approve on timeout posts (by "system", with an act);
// escalate moves up once, then denies per the route of the new role.
func TestSLAOnTimeout(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e.Open(t), testPolicy)
			ctx := ctxT(t)
			g := f.request("fl1", "gift", 500)    // 5m, approve
			r := f.request("fl2", "refund", 3000) // 10m, escalate to manager
			if n, err := f.svc.Sweep(ctx); n != 0 || err != nil {
				t.Fatalf("nothing is due yet: %d %v", n, err)
			}
			f.clock.Add(5*time.Minute + time.Second)
			if n, err := f.svc.Sweep(ctx); n != 1 || err != nil {
				t.Fatalf("sweep at 5m: %d %v", n, err)
			}
			got := f.approval(g.ID)
			if got.Status != margen.ApprovalApproved || got.DecidedBy != approval.SystemActor || got.ActID == "" {
				t.Fatalf("gift after its SLA: %+v", got)
			}
			if b := f.balance("fl1"); b != (margen.Balance{Posted: 500}) {
				t.Fatalf("fl1 balance %+v", b)
			}
			f.clock.Add(5 * time.Minute)
			if n, err := f.svc.Sweep(ctx); n != 1 || err != nil {
				t.Fatalf("sweep at 10m: %d %v", n, err)
			}
			got = f.approval(r.ID)
			if got.Status != margen.ApprovalPending || got.ApproverRole != "manager" || got.Level != 1 ||
				got.OnTimeout != policy.OnTimeoutDeny || got.DueAt.Sub(r.DueAt) < 10*time.Minute {
				t.Fatalf("refund after its SLA: %+v", got)
			}
			f.clock.Add(10*time.Minute + time.Second)
			if n, err := f.svc.Sweep(ctx); n != 1 || err != nil {
				t.Fatalf("sweep at 20m: %d %v", n, err)
			}
			got = f.approval(r.ID)
			if got.Status != margen.ApprovalExpired || !slices.Equal(kinds(got), []string{"requested", "escalated", "expired"}) {
				t.Fatalf("refund after the second SLA: %+v %v", got, kinds(got))
			}
			if b := f.balance("fl2"); b != (margen.Balance{}) {
				t.Fatalf("fl2 balance %+v", b)
			}
			f.checkLedger()
		})
	}
}

// TestThousandBreaches is the test: 1,000 simultaneous SLA
// breaches, two workers (two store handles, as two processes) sweeping at
// once, one of them killed mid-way; a restarted worker finishes. Exactly
// 1,000 escalations, none twice, each dated by the worker's clock with the
// next SLA counted from it.
func TestThousandBreaches(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			const n = 1000
			st1, st2 := openPair(t, e.Name)
			f := newFixture(t, st1, testPolicy)
			ctx := ctxT(t)

			start := time.Now()
			var wg sync.WaitGroup
			reqs := make([]string, n)
			for i := range n {
				wg.Go(func() {
					login := []string{"fl1", "fl2", "fl3"}[i%3]
					res, err := f.eng.Decide(ctx, &decision.Request{Org: f.org, Member: f.m[login], Action: "refund",
						Amount: 3000, Customer: decision.CustomerInput{Ref: fmt.Sprintf("c%d", i)}})
					if err != nil || res.Decision.Outcome != margen.OutcomeNeedsApproval {
						t.Errorf("decide: %v", err)
						return
					}
					reqs[i] = res.Decision.ApprovalID
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			created := time.Since(start)

			// Every request breaches at once.
			breach := t0.Add(10*time.Minute + time.Second)
			f.clock.Set(breach)

			killCtx, kill := context.WithCancel(ctx)
			defer kill()
			var killedAfter atomic.Int64
			a := f.service(st1, func() {
				if killedAfter.Add(1) == 150 {
					kill() // the worker dies mid-way, in the middle of its batch
				}
			})
			b := f.service(st2, nil)
			start = time.Now()
			var na, nb int
			var errA, errB error
			wg.Go(func() { na, errA = a.Sweep(killCtx) })
			wg.Go(func() { nb, errB = b.Sweep(ctx) })
			wg.Wait()
			if errB != nil {
				t.Fatalf("surviving worker: %v", errB)
			}
			if errA == nil {
				t.Logf("the killed worker finished before it was killed (%d)", na)
			}
			// A restarted worker picks up whatever is left.
			nc, err := f.service(st1, nil).Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			swept := time.Since(start)
			if na+nb+nc > n {
				t.Fatalf("workers report %d+%d+%d resolutions for %d requests", na, nb, nc, n)
			}

			// The injected clock only ticks a microsecond per reading, so
			// "how late" cannot be measured here; what can fail is the
			// stamp: each escalation is dated by a reading of the workers'
			// clock during the sweeps (not the due time, not the wall clock)
			// and starts the manager's SLA from then.
			end := f.clock.Now()
			escalated := 0
			for _, id := range reqs {
				got := f.approval(id)
				if c := count(got, margen.EventEscalated); c != 1 {
					t.Fatalf("%s escalated %d times: %v", id, c, kinds(got))
				}
				escalated++
				if got.Status != margen.ApprovalPending || got.Level != 1 || got.ApproverRole != "manager" {
					t.Fatalf("%s after the sweep: %+v", id, got)
				}
				for _, ev := range got.History {
					if ev.Kind != margen.EventEscalated {
						continue
					}
					if !ev.At.After(breach) || ev.At.After(end) {
						t.Fatalf("%s escalated at %v, not by the workers' clock (%v to %v)", id, ev.At, breach, end)
					}
					if !got.DueAt.Equal(ev.At.Add(10 * time.Minute)) {
						t.Fatalf("%s escalated at %v is due at %v, want the manager's 10m from then", id, ev.At, got.DueAt)
					}
				}
			}
			if escalated != n {
				t.Fatalf("%d escalations, want %d", escalated, n)
			}
			if m, err := f.svc.Sweep(ctx); m != 0 || err != nil {
				t.Fatalf("a second sweep found %d (%v)", m, err)
			}
			t.Logf("%s: %d requests created in %v; swept in %v (killed worker %d, other %d, restarted %d)",
				e.Name, n, created.Round(time.Millisecond), swept.Round(time.Millisecond), na, nb, nc)

			// The next SLA passes too: all expire, every hold is voided.
			f.clock.Add(10*time.Minute + time.Second)
			if m, err := f.svc.Sweep(ctx); m != n || err != nil {
				t.Fatalf("second SLA: %d %v", m, err)
			}
			for _, login := range []string{"fl1", "fl2", "fl3"} {
				if b := f.balance(login); b != (margen.Balance{}) {
					t.Fatalf("%s balance %+v after expiry", login, b)
				}
			}
			f.checkLedger()
		})
	}
}

// TestRaceAnswers: approve, reject and expiry racing on the same requests
// end in exactly one terminal state each, and posted plus voided equals
// what was held, to the unit.
func TestRaceAnswers(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			const n = 200
			f := newFixture(t, e.Open(t), testPolicy)
			ctx := ctxT(t)
			// A supervisor's requests go to a manager and deny on timeout.
			reqs := make([]*margen.Approval, n)
			var held int64
			for i := range n {
				reqs[i] = f.request("sup", "refund", int64(5001+i))
				held += reqs[i].Amount
			}
			if b := f.balance("sup"); b.Pending != held {
				t.Fatalf("held %d, want %d", b.Pending, held)
			}
			f.clock.Add(10*time.Minute + time.Second)
			var wg sync.WaitGroup
			var approved, rejected, expired atomic.Int64
			for _, a := range reqs {
				wg.Go(func() {
					if _, err := f.answer("mgr", a.ID, true); err == nil {
						approved.Add(1)
					}
				})
				wg.Go(func() {
					if _, err := f.answer("owner", a.ID, false); err == nil {
						rejected.Add(1)
					}
				})
			}
			wg.Go(func() {
				m, _ := f.svc.Sweep(ctx)
				expired.Add(int64(m))
			})
			wg.Wait()
			if got := approved.Load() + rejected.Load() + expired.Load(); got != n {
				t.Fatalf("%d approved + %d rejected + %d expired != %d", approved.Load(), rejected.Load(), expired.Load(), n)
			}
			var posted, voided int64
			for _, a := range reqs {
				got := f.approval(a.ID)
				terminal := 0
				for _, ev := range got.History {
					switch ev.Kind {
					case margen.EventApproved, margen.EventRejected, margen.EventExpired:
						terminal++
					}
				}
				if terminal != 1 || got.Status == margen.ApprovalPending {
					t.Fatalf("%s: status %s with history %v", a.ID, got.Status, kinds(got))
				}
				if got.Status == margen.ApprovalApproved {
					posted += a.Amount
				} else {
					voided += a.Amount
				}
			}
			b := f.balance("sup")
			if b.Posted != posted || b.Pending != 0 || posted+voided != held {
				t.Fatalf("balance %+v; posted %d + voided %d vs held %d", b, posted, voided, held)
			}
			t.Logf("%s: %d approved, %d rejected, %d expired", e.Name, approved.Load(), rejected.Load(), expired.Load())
			f.checkLedger()
		})
	}
}

// TestSweepSkipsABrokenOrganisation: an organisation whose policy cannot be
// loaded, with more overdue requests than one scan's batch, older than
// everyone else's, neither stops the sweep nor delays another
// organisation's escalation.
func TestSweepSkipsABrokenOrganisation(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st := e.Open(t)
			f := newFixture(t, st, testPolicy)
			ctx := ctxT(t)
			bad := testsupport.NewOrg(t, st, testsupport.OrgOptions{Slug: slug("broken"), At: t0, Policy: testPolicy,
				Owner:   testsupport.Member{Login: "owner", Role: "manager"},
				Members: []testsupport.Member{{Login: "b1", Access: margen.AccessFrontline, Role: "frontline"}}})
			d := &storetest.Decider{Limit: 1 << 50, At: t0.Add(-time.Hour)}
			for i := range 501 {
				d.Reqs = append(d.Reqs, storetest.Request{OrgID: bad.Org.ID, MemberID: bad.Members["b1"].ID,
					CustomerRef: fmt.Sprintf("c%d", i), Amount: 1, Action: "ask"})
			}
			if err := st.DecideBatch(ctx, d.Query(), d.Decide); err != nil {
				t.Fatal(err)
			}
			// A policy the store took without checking it, as after an
			// upgrade that reads old policies more strictly.
			if err := st.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: bad.Org.ID, Source: "version: 1",
				CreatedBy: bad.Owner.ID}, nil); err != nil {
				t.Fatal(err)
			}

			r := f.request("fl2", "refund", 3000) // 10m, escalate to manager
			f.clock.Add(10*time.Minute + time.Second)
			n, err := f.svc.Sweep(ctx)
			if err == nil {
				t.Error("the sweep reported no error for the organisation whose policy fails")
			}
			if n != 1 {
				t.Fatalf("the sweep resolved %d requests, want 1 (the healthy organisation's)", n)
			}
			if got := f.approval(r.ID); got.ApproverRole != "manager" || got.Level != 1 {
				t.Fatalf("the healthy organisation's request was not escalated: %+v", got)
			}
			left, err := st.DueApprovals(ctx, f.clock.Now(), margen.DueAfter{}, 1000)
			if err != nil || len(left) != 501 {
				t.Fatalf("the broken organisation's requests: %d still due (%v), want all 501 for the next sweep", len(left), err)
			}
		})
	}
}
