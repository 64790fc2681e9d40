package storetest

import (
	"strings"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// sealed is a populated organisation: seedOrg's three decisions (allowed,
// denied, needs_approval), the request approved by the owner, a reaction
// to the act and a refusal recorded by hand.
type sealed struct {
	seeded
	reaction *margen.Reaction
	refusal  *margen.Refusal
}

func seedSealed(t *testing.T, db *store.DB, slug string) sealed {
	t.Helper()
	ctx := ctxT(t)
	s := sealed{seeded: seedOrg(t, db, slug)}
	if _, err := ApplyResolution(ctx, db, s.org.ID, margen.Resolution{ApprovalID: s.asked.ApprovalID,
		Status: margen.ApprovalApproved, Actor: s.owner.ID, At: clockAt}, nil); err != nil {
		t.Fatal(err)
	}
	s.reaction = &margen.Reaction{OrgID: s.org.ID, ActID: s.decision.ActID, Source: margen.SourceEmployee,
		Sentiment: margen.SentimentPositive, MemberID: s.member.ID}
	if err := db.RecordReaction(ctx, s.reaction, nil); err != nil {
		t.Fatal(err)
	}
	s.refusal = &margen.Refusal{OrgID: s.org.ID, MemberID: s.member.ID, ReasonKind: "policy", Wanted: "a cake", Note: "n"}
	if err := db.RecordRefusal(ctx, s.refusal, nil, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

// testSealTamper: every recorded fact is tamper-evident. Each case edits
// stored rows with raw SQL, as someone with access to the database but not
// to the audit key could, and expects CheckAudit to name the row (and
// VerifyAudit, which the ledger check reports, to fail).
func testSealTamper(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	clean := seedSealed(t, db, "seal-clean")
	if rep, err := db.CheckAudit(ctx, clean.org.ID); err != nil || !rep.OK() || rep.Rows < 15 {
		t.Fatalf("untouched organisation: %+v, %v", rep, err)
	}
	cases := []struct {
		name  string
		table string
		what  string
		edit  func(s sealed) string // the key of the row it touches
	}{
		{"decision member", "decisions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE decisions SET member_id = ? WHERE org_id = ? AND id = ?", s.owner.ID, s.org.ID, s.decision.ID)
			return s.decision.ID
		}},
		{"decision outcome denied to allowed", "decisions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE decisions SET outcome = 'allowed' WHERE org_id = ? AND id = ?", s.org.ID, s.denied.ID)
			return s.denied.ID
		}},
		{"decision customer", "decisions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE decisions SET customer_id = ? WHERE org_id = ? AND id = ?", s.asked.CustomerID, s.org.ID, s.decision.ID)
			return s.decision.ID
		}},
		{"decision action", "decisions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE decisions SET action = 'refund' WHERE org_id = ? AND id = ?", s.org.ID, s.decision.ID)
			return s.decision.ID
		}},
		{"decision policy version", "decisions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE decisions SET policy_version = policy_version + 1 WHERE org_id = ? AND id = ?", s.org.ID, s.decision.ID)
			return s.decision.ID
		}},
		{"decision rule", "decisions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE decisions SET rule = 'grants[0]' WHERE org_id = ? AND id = ?", s.org.ID, s.denied.ID)
			return s.denied.ID
		}},
		{"denied decision deleted", "decisions", "deleted", func(s sealed) string {
			exec(t, db, "DELETE FROM decisions WHERE org_id = ? AND id = ?", s.org.ID, s.denied.ID)
			return s.denied.ID
		}},
		{"decision inserted", "decisions", "uncommitted", func(s sealed) string {
			exec(t, db, `INSERT INTO decisions (org_id, id, member_id, customer_id, action, amount, currency, reason, context,
				outcome, policy_version, rule, explanation_code, explanation_args, flagged, budgets, act_id, approval_id,
				refusal_id, created_at)
				SELECT org_id, 'dec_forged', member_id, customer_id, action, amount, currency, reason, context, outcome,
				policy_version, rule, explanation_code, explanation_args, flagged, budgets, act_id, approval_id, refusal_id,
				created_at FROM decisions WHERE org_id = ? AND id = ?`, s.org.ID, s.denied.ID)
			return "dec_forged" // a refusal nobody gave: no ledger entry to miss
		}},
		{"act amount", "acts", "changed", func(s sealed) string {
			exec(t, db, "UPDATE acts SET amount = 1 WHERE org_id = ? AND id = ?", s.org.ID, s.decision.ActID)
			return s.decision.ActID
		}},
		{"refusal reason", "refusals", "changed", func(s sealed) string {
			exec(t, db, "UPDATE refusals SET reason_kind = 'stock' WHERE org_id = ? AND id = ?", s.org.ID, s.denied.RefusalID)
			return s.denied.RefusalID
		}},
		{"refusal recorded by hand", "refusals", "changed", func(s sealed) string {
			exec(t, db, "UPDATE refusals SET note = 'edited' WHERE org_id = ? AND id = ?", s.org.ID, s.refusal.ID)
			return s.refusal.ID
		}},
		{"reaction sentiment", "reactions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE reactions SET sentiment = 'negative' WHERE org_id = ? AND id = ?", s.org.ID, s.reaction.ID)
			return s.reaction.ID
		}},
		{"approval decided_by", "approvals", "changed", func(s sealed) string {
			exec(t, db, "UPDATE approvals SET decided_by = ? WHERE org_id = ? AND id = ?", s.member.ID, s.org.ID, s.asked.ApprovalID)
			return s.asked.ApprovalID
		}},
		{"member access", "members", "changed", func(s sealed) string {
			exec(t, db, "UPDATE members SET access = 'owner' WHERE org_id = ? AND id = ?", s.org.ID, s.member.ID)
			return s.member.ID
		}},
		{"policy source", "policy_versions", "changed", func(s sealed) string {
			exec(t, db, "UPDATE policy_versions SET source = 'version: 1 # edited' WHERE org_id = ? AND version = 1", s.org.ID)
			return "1"
		}},
		{"ledger entry amount", "ledger_entries", "changed", func(s sealed) string {
			var id string
			if err := db.SQL().QueryRowContext(ctx, db.Rebind("SELECT id FROM ledger_entries WHERE org_id = ? AND decision_id = ?"),
				s.org.ID, s.decision.ID).Scan(&id); err != nil {
				t.Fatal(err)
			}
			exec(t, db, "UPDATE ledger_entries SET amount = amount - 1 WHERE org_id = ? AND id = ?", s.org.ID, id)
			return id
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := seedSealed(t, db, "seal-"+strings.ReplaceAll(c.name, " ", "-"))
			key := c.edit(s)
			rep, err := db.CheckAudit(ctx, s.org.ID)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range rep.Problems {
				if p.Table == c.table && p.Key == key && p.What == c.what && strings.Contains(p.Detail, key) {
					found = true
				}
			}
			if rep.OK() || !found {
				t.Fatalf("CheckAudit does not report %s %s %s: %+v", c.what, c.table, key, rep)
			}
			if broken, _, err := db.VerifyAudit(ctx, s.org.ID); err != nil || broken == 0 {
				t.Fatalf("VerifyAudit = %d, %v after editing %s", broken, err, c.name)
			}
		})
	}
	if rep, err := db.CheckAudit(ctx, clean.org.ID); err != nil || !rep.OK() {
		t.Fatalf("the untouched organisation after the others' edits: %+v, %v", rep, err)
	}

	// Editing a fact and its entry, then recomputing every hash after it
	// and the head, without the key: the first re-hashed link fails.
	t.Run("entry rewritten and re-hashed without the key", func(t *testing.T) {
		s := seedSealed(t, db, "seal-rehash")
		exec(t, db, "UPDATE decisions SET outcome = 'allowed' WHERE org_id = ? AND id = ?", s.org.ID, s.denied.ID)
		audit, err := db.ListAudit(ctx, s.org.ID, 0, 500)
		if err != nil {
			t.Fatal(err)
		}
		from := -1
		for i := range audit {
			if audit[i].Subject == s.denied.ID {
				from = i
			}
		}
		if from < 0 {
			t.Fatal("no entry for the denied decision")
		}
		// The rows the entry commits to, re-digested from the edited row
		// as a forger would, cannot be without the key's hash anyway: the
		// forger re-hashes with what they have, SHA-256 or a guessed key.
		prev := audit[from].PrevHash
		for i := from; i < len(audit); i++ {
			e := audit[i]
			full, err := db.ListAudit(ctx, s.org.ID, e.Seq-1, 1)
			if err != nil {
				t.Fatal(err)
			}
			e.Rows = full[0].Rows
			e.PrevHash = prev
			e.Hash = margen.AuditKey("a guessed key, not the real one!").Hash(&e)
			exec(t, db, "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE org_id = ? AND seq = ?", e.PrevHash, e.Hash, s.org.ID, e.Seq)
			prev = e.Hash
		}
		exec(t, db, "UPDATE orgs SET audit_head = ? WHERE id = ?", prev, s.org.ID)
		rep, err := db.CheckAudit(ctx, s.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.Broken != audit[from].Seq {
			t.Fatalf("re-hashed chain: %+v", rep)
		}
		// Re-hashing the legacy way (SHA-256, no key) and moving the seal
		// out of the way does not help either.
		prev = ""
		for i := range audit {
			e := audit[i]
			e.Rows, e.PrevHash = "", prev
			e.Hash = margen.ChainHash(&e)
			exec(t, db, "UPDATE audit_log SET prev_hash = ?, hash = ?, row_digests = '' WHERE org_id = ? AND seq = ?", e.PrevHash, e.Hash, s.org.ID, e.Seq)
			prev = e.Hash
		}
		exec(t, db, "UPDATE orgs SET audit_head = ?, audit_sealed_from = 0 WHERE id = ?", prev, s.org.ID)
		rep, err = db.CheckAudit(ctx, s.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.Problems[0].What != "unsealed" {
			t.Fatalf("downgraded chain: %+v", rep)
		}
	})
}
