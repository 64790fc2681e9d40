package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
)

// policyErrors is a policy file that did not validate. It prints like a
// compiler's errors, one per line: FILE:LINE:COL: path: message.
type policyErrors struct {
	file string
	errs policy.Errors
}

func (e *policyErrors) Error() string {
	var b strings.Builder
	for i, pe := range e.errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(located(e.file, pe, ""))
	}
	return b.String()
}

// located prints one problem as FILE:LINE:COL: path: [kind: ]message.
func located(file string, pe policy.Error, kind string) string {
	var b strings.Builder
	b.WriteString(file)
	if pe.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", pe.Line, pe.Column)
	}
	b.WriteString(": ")
	if pe.Path != "" {
		b.WriteString(pe.Path + ": ")
	}
	if kind != "" {
		b.WriteString(kind + ": ")
	}
	b.WriteString(pe.Msg)
	return b.String()
}

// printWarnings prints a valid policy's warnings, one per line, and returns
// how many there were.
func printWarnings(w io.Writer, file string, p *policy.Policy) int {
	ws := p.Warnings()
	for _, pe := range ws {
		fmt.Fprintln(w, located(file, pe, "warning"))
	}
	return len(ws)
}

// withWarnings is the end of a summary line: "" or " with 2 warnings".
func withWarnings(n int) string {
	if n == 0 {
		return ""
	}
	return " with " + count(n, "warning", "warnings")
}

// readPolicy reads and validates a policy file. It reads at most one byte
// more than policy.MaxPolicySize, so a huge file (or a device) is refused
// for its size without being read whole.
func readPolicy(file string) (*policy.Policy, []byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	src, err := io.ReadAll(io.LimitReader(f, policy.MaxPolicySize+1))
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	p, err := policy.Parse(src)
	var errs policy.Errors
	if errors.As(err, &errs) {
		return nil, nil, &policyErrors{file: file, errs: errs}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, src, nil
}

// declaredRoles counts the roles the file declares (not the built-in owner).
func declaredRoles(p *policy.Policy) int {
	n := 0
	for _, r := range p.Roles() {
		if !r.Builtin {
			n++
		}
	}
	return n
}

func summary(p *policy.Policy) string {
	return strings.Join([]string{count(len(p.Actions()), "action", "actions"), count(declaredRoles(p), "role", "roles"),
		count(len(p.Grants()), "grant", "grants"), count(len(p.Forbids()), "forbid rule", "forbid rules")}, ", ")
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func cmdPolicyCheck(_ context.Context, a *app, args []string) error {
	fs := a.flags("policy check", "FILE", `Validates a latitude policy file without touching any database. Each problem
is printed as FILE:LINE:COL: path: message and the exit status is 1;
a valid file prints its warnings (FILE:LINE:COL: path: warning: message:
what will not work as written, such as an approval route to a role that
may not approve what it receives) and a one-line summary.

Example:
  margen policy check policy.yaml`)
	pos, err := fs.parse(args, 1)
	if err != nil {
		return err
	}
	p, _, err := readPolicy(pos[0])
	if err != nil {
		return err
	}
	n := printWarnings(a.stdout, pos[0], p)
	fmt.Fprintf(a.stdout, "%s: ok%s (%s)\n", pos[0], withWarnings(n), summary(p))
	return nil
}

func cmdPolicyPublish(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("policy publish", "FILE", `Validates a policy file and publishes it as the organisation's next version,
which takes effect at once for every new decision. It refuses a policy in
another currency than the organisation's, and one that leaves an active
member with a role it does not declare.

Example:
  margen policy publish --org la-brasa --note "Canasta de pan sin permiso" policy.yaml`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	note := fs.String("note", "", "what changed, for the history of versions")
	fs.require("org")
	pos, err := fs.parse(args, 1)
	if err != nil {
		return err
	}
	file := pos[0]
	p, src, err := readPolicy(file)
	if err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	if p.Currency() != org.Currency {
		return fmt.Errorf("%s: the policy is in %s but %s counts in %s", file, p.Currency(), org.Slug, org.Currency)
	}
	members, err := st.ListMembers(ctx, org.ID)
	if err != nil {
		return err
	}
	var missing []string
	for _, m := range members {
		if m.Active && !p.HasRole(m.Role) {
			missing = append(missing, fmt.Sprintf("%s (role %s)", m.Login, m.Role))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: not published: these active members have a role the policy does not declare: %s; add the roles to the policy or change the members' roles",
			file, strings.Join(missing, ", "))
	}
	pv := &margen.PolicyVersion{OrgID: org.ID, Source: string(src), CreatedBy: actor, Note: *note}
	if err := st.PublishPolicy(ctx, pv, nil); err != nil {
		return err
	}
	n := printWarnings(a.stdout, file, p)
	fmt.Fprintf(a.stdout, "published %s as policy version %d of %s%s (%s)\n", file, pv.Version, org.Slug, withWarnings(n), summary(p))
	return nil
}

func cmdPolicyExplain(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("policy explain", "", `Shows what the organisation's active policy would answer if a member asked
now: the outcome, the rule that decides, the explanation in the member's
language and the budgets with their limit, use and remainder. It records
nothing: no decision, no budget use, no audit entry.

--amount is in integer minor units of the organisation's currency
(COP in centavos: 800000 = $8.000).

Example:
  margen policy explain --org demo --member camila --action cortesia \
      --amount 800000 --customer mesa-12 --context '{"order_total": 33000000}'`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	login := fs.String("member", "", "login of the member who would ask (required)")
	action := fs.String("action", "", "action id of the policy, e.g. cortesia (required)")
	amount := fs.Int64("amount", 0, "cost in integer minor units (centavos for COP); 0 for non-monetary actions")
	ref := fs.String("customer", "explain", "customer reference (loyalty id, phone, table...); an unknown one is a new customer")
	ctxJSON := fs.String("context", "", `facts the conditions read, as a JSON object, e.g. '{"order_total": 33000000}'`)
	reason := fs.String("reason", "", "why, as the member would say it")
	fs.require("org", "member", "action")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	var rawCtx json.RawMessage
	if s := strings.TrimSpace(*ctxJSON); s != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(s), &obj); err != nil || obj == nil {
			return fmt.Errorf("--context: give a JSON object such as '{\"order_total\": 33000000}'")
		}
		rawCtx = json.RawMessage(s)
	}
	if *amount < 0 {
		return fmt.Errorf("--amount: must not be negative")
	}
	log := cfg.logger(a.stderr)
	cat, err := i18n.New()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer st.Close()
	org, err := orgBySlug(ctx, st, *orgSlug)
	if err != nil {
		return err
	}
	m, err := memberByLogin(ctx, st, org, *login)
	if err != nil {
		return err
	}
	engine := decision.New(st, decision.Options{Logger: log})
	defer engine.Close()
	d, err := engine.Explain(ctx, &decision.Request{Org: org, Member: m, Action: *action, Amount: *amount,
		Customer: decision.CustomerInput{Ref: *ref}, Reason: *reason, Context: rawCtx})
	if err != nil {
		if margen.IsCode(err, margen.ECONFLICT) {
			return fmt.Errorf("%s has no active policy: publish one with margen policy publish", org.Slug)
		}
		if margen.IsCode(err, margen.EINVALID) {
			var me *margen.Error
			if errors.As(err, &me) && me.Key == "error.unknown_action" {
				if pol, _, perr := engine.Policy(ctx, org.ID); perr == nil {
					var ids []string
					for _, x := range pol.Actions() {
						ids = append(ids, x.ID)
					}
					return fmt.Errorf("--action: the policy has no action %q (actions: %s)", *action, strings.Join(ids, ", "))
				}
			}
		}
		return err
	}
	pol, _, err := engine.Policy(ctx, org.ID)
	if err != nil {
		return err
	}
	lang := m.Language
	if lang == "" {
		lang = org.Language
	}
	money := func(v int64) string { return i18n.FormatMoney(lang, org.Currency, v) }

	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "outcome:\t%s\n", d.Outcome)
	rule := d.Rule
	if rule == "" {
		rule = "(none)"
	}
	fmt.Fprintf(w, "rule:\t%s (policy version %d, code %s)\n", rule, d.PolicyVersion, d.Explanation.Code)
	fmt.Fprintf(w, "why:\t%s\n", explanation(cat, pol, lang, org.Currency, d))
	fmt.Fprintf(w, "amount:\t%s\n", money(d.Amount))
	if d.Flagged {
		fmt.Fprintf(w, "flagged:\tyes, the act would be flagged for review\n")
	}
	if d.Outcome == margen.OutcomeNeedsApproval {
		ap, _ := d.Explanation.Args["approver"].(string)
		for _, r := range pol.Roles() {
			if r.ID == ap && r.Label[lang] != "" {
				ap = r.ID + " (" + r.Label[lang] + ")"
			}
		}
		sla := fmt.Sprint(d.Explanation.Args["sla"])
		if dur, err := time.ParseDuration(sla); err == nil {
			sla = i18n.FormatDuration(dur)
		}
		fmt.Fprintf(w, "approver:\t%s, within %s\n", ap, sla)
	}
	w.Flush()
	if len(d.Budgets) == 0 {
		fmt.Fprintln(a.stdout, "budgets: none charged")
	} else {
		fmt.Fprintln(a.stdout, "budgets:")
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  budget\tscope\tsubject\tperiod\tlimit\tused\tremaining\tkind\t\n")
		for _, b := range d.Budgets {
			subject := b.Subject
			switch {
			case b.Scope == policy.ScopeMember && b.Subject == m.ID:
				subject = m.Login
			case b.Scope == policy.ScopeCustomer:
				subject = *ref
			}
			kind := "hard"
			if !b.Hard {
				kind = "soft"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", b.Budget, b.Scope, subject, b.Period,
				money(b.Limit), money(b.Used), money(b.Remaining), kind)
		}
		tw.Flush()
		if d.Outcome == margen.OutcomeAllowed {
			fmt.Fprintln(a.stdout, "  (used and remaining include this act)")
		}
	}
	fmt.Fprintln(a.stdout, "(nothing was recorded)")
	return nil
}

// explanation renders a decision's explanation in lang, with the policy's
// labels for the action and roles, as the API does.
func explanation(cat *i18n.Catalog, pol *policy.Policy, lang, currency string, d *margen.Decision) string {
	args := maps.Clone(d.Explanation.Args)
	if args == nil {
		args = map[string]any{}
	}
	if id, ok := args["action"].(string); ok {
		if x, ok := pol.Action(id); ok && x.Label[lang] != "" {
			args["action"] = x.Label[lang]
		}
	}
	if id, ok := args["rule"].(string); ok {
		if l := pol.RuleLabel(id, lang); l != "" {
			args["rule"] = l
		}
	}
	for _, k := range []string{"approver", "role"} {
		if id, ok := args[k].(string); ok {
			i := slices.IndexFunc(pol.Roles(), func(r policy.Role) bool { return r.ID == id })
			if i >= 0 && pol.Roles()[i].Label[lang] != "" {
				args[k] = pol.Roles()[i].Label[lang]
			}
		}
	}
	if _, ok := args["remaining"]; !ok && d.Outcome == margen.OutcomeAllowed && len(d.Budgets) > 0 {
		low := d.Budgets[0]
		for _, b := range d.Budgets[1:] {
			if b.Remaining < low.Remaining {
				low = b
			}
		}
		args["remaining"] = low.Remaining
		args["budget"] = low.Budget
		if b, ok := pol.Budget(low.Budget); ok {
			args["period"] = b.Period
		}
	}
	return cat.Explain(lang, currency, d.Explanation.Code, args)
}

func cmdLedgerCheck(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("ledger check", "", `Re-derives every budget account of an organisation from its ledger entries
and from the decisions and approvals that caused them, and verifies the
audit trail: its keyed hash chain, and every stored decision, act, refusal,
reaction, approval, member, token, customer, policy version and ledger entry
against the digest the trail committed to for it (a changed, deleted or
inserted row is named). Prints a summary; the exit status is 1 on any
mismatch, a broken chain or a row that does not match.

The check streams: its memory does not grow with the organisation (rows
are read in order and, for the audit, spread over temporary files). With
--checkpoint, the audit check starts from the last checkpoint of the
organisation in a file written by margen audit checkpoint (its signature
verified with the audit key): only the entries after it are walked and
only the rows they commit to are read back. The server runs the same
check as a job (POST /api/v1/ledger/check).

Example:
  margen ledger check --org demo
  margen ledger check --org demo --checkpoint /backup/demo.checkpoints`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	file := fs.String("checkpoint", "", "start the audit check from the organisation's last checkpoint in this file")
	fs.require("org")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	var cps []margen.Checkpoint
	if *file != "" {
		if cps, err = readCheckpoints(*file); err != nil {
			return err
		}
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	var from *margen.Checkpoint
	if len(cps) > 0 {
		key, err := loadAuditKey(cfg, cfg.logger(a.stderr), false)
		if err != nil {
			return err
		}
		for i := len(cps) - 1; i >= 0 && from == nil; i-- {
			if cps[i].OrgID == org.ID {
				if err := margen.VerifyCheckpoint(&cps[i], key.PublicKey()); err != nil {
					return fmt.Errorf("--checkpoint: the last checkpoint of %s: %w", org.Slug, err)
				}
				from = &cps[i]
			}
		}
		if from == nil {
			return fmt.Errorf("--checkpoint: %s holds no checkpoint of %s", *file, org.Slug)
		}
	}
	rep, err := st.CheckLedger(ctx, org.ID)
	if err != nil {
		return err
	}
	audit, err := st.CheckAuditFrom(ctx, org.ID, from)
	if err != nil {
		return err
	}
	w := a.stdout
	fmt.Fprintf(w, "ledger: %d accounts, %d entries: ", rep.Accounts, rep.Entries)
	if rep.OK() {
		fmt.Fprintln(w, "ok")
	} else {
		fmt.Fprintf(w, "%d mismatches\n", rep.MismatchCount)
		for _, mm := range rep.Mismatches {
			fmt.Fprintf(w, "  %s/%s/%s: %s: want %d, got %d", mm.Key.BudgetID, mm.Key.Subject, mm.Key.Period, mm.What, mm.Want, mm.Got)
			if mm.Detail != "" {
				fmt.Fprintf(w, " (%s)", mm.Detail)
			}
			fmt.Fprintln(w)
		}
	}
	if n := rep.MismatchCount - len(rep.Mismatches); n > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", n)
	}
	if audit.From > 0 {
		fmt.Fprintf(w, "audit:  from the checkpoint at entry %d (signed %s)\n", audit.From, from.At.Format(time.RFC3339))
	}
	auditOK := printAudit(w, audit)
	switch {
	case !rep.OK() && !auditOK:
		return fmt.Errorf("%s: %d ledger mismatches and %d audit problems", org.Slug, rep.MismatchCount, audit.ProblemCount)
	case !rep.OK():
		return fmt.Errorf("%s: %d ledger mismatches", org.Slug, rep.MismatchCount)
	case !auditOK:
		return fmt.Errorf("%s: %d audit problems (first: %s)", org.Slug, audit.ProblemCount, audit.Problems[0].Detail)
	}
	return nil
}
