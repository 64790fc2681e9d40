// Package policy is margen's latitude-policy core: it parses, validates and
// compiles the YAML "latitude policy" a business writes (what each role may
// do alone for a customer, up to which amount, within which budgets, under
// which conditions, who approves above that, and what is forbidden) and
// evaluates requests against it.
//
// The package is pure. It must never do I/O, read the clock, use randomness
// or keep mutable global state: every input (the document, the request, its
// time and time zone, the budgets' usage) is passed in and every result is a
// value. That keeps it the most tested code in the project and lets the same
// code serve live decisions, `margen policy check|explain` and what-if
// simulation over history.
//
// # Deciding
//
// A decision has two phases so that the caller can lock budget accounts in
// between:
//
//	v, err := p.Evaluate(&req)       // forbids, grants, conditions, max amounts
//	keys := v.Keys()                 // budget accounts to lock, sorted
//	v = v.Settle(req.Amount, used)   // budgets: allowed, needs_approval or denied
//
// Evaluate applies, in order: forbid rules (file order; the first whose
// roles and condition match denies with code "forbidden"); the grants that
// apply to the member's role or any role it inherits (nearest role first,
// then file order), their team and their action ("no_grant" if none);
// their conditions ("condition_not_met" if none holds); their max_amount
// ("over_max", routed to approval or denied, when the amount is above every
// hard maximum). The surviving grants are candidates; Settle gives the act
// to the first candidate whose hard budgets have room, else routes it to the
// first candidate's approver ("budget_exhausted").
//
// A caller deciding requests one after another (the decision engine, over a
// batch) passes a Scratch to EvaluateIn instead: the verdict's slices then
// live in it, and deciding allocates nothing, as long as each verdict is
// done with before the Scratch decides the next request.
//
// # Policy format
//
// Amounts are integers in minor units of the policy currency (cents), from
// 0 to 1e13. Ids are lowercase: [a-z][a-z0-9_]*. Unknown fields are errors.
//
//	currency: COP                 # ISO 4217, required
//	actions:                      # the catalogue, required
//	  - id: courtesy_gift
//	    label: {es: "Cortesía de la casa", en: "Courtesy gift"}   # es and en required
//	    monetary: true            # default true; non-monetary actions are requested with amount 0
//	roles:                        # required
//	  - id: frontline
//	    label: {es: "Primera línea", en: "Frontline"}
//	  - id: supervisor
//	    label: {es: "Supervisor", en: "Supervisor"}
//	    inherits: [frontline]     # holds every grant of frontline too (transitively; no cycles)
//	budgets:                      # optional
//	  - id: member_daily
//	    scope: member             # member | customer | team | org
//	    period: day               # day | week (ISO, Monday start) | month, in the org's time zone
//	    limit: 6000000            # > 0
//	    hard: true                # default true; false = allow beyond it and flag
//	approval:                     # optional default route for grants without `above`
//	  approver: supervisor        # a role id
//	  sla: 10m                    # Go duration, > 0, <= 720h
//	  on_timeout: escalate        # escalate | approve | deny
//	  escalate_to: manager        # required iff on_timeout is escalate
//	grants:
//	  - id: bread_basket          # unique among grants and forbids
//	    label: {es: "Canasta de pan", en: "Bread basket"}   # optional; shown instead of the id
//	    role: frontline
//	    teams: [restaurante]      # optional: only members of these teams
//	    actions: [courtesy_gift]  # action ids, or ["*"]
//	    max_amount: 1500000       # per act; required when an action is monetary
//	    hard: true                # default true; false = above max_amount is allowed but flagged
//	    budgets: [member_daily]   # charged when the grant allows an act
//	    when: 'amount * 2 <= int(context.order_total) * 3'   # optional CEL condition, or
//	    # {if: '...', label: {es, en}}, or a list of those (all must hold)
//	    above: {approver: supervisor, sla: 5m, on_timeout: deny}  # or `none` (deny); default: approval
//	forbid:
//	  - id: no_cash_refunds
//	    label: {es: "...", en: "..."}   # optional
//	    actions: [refund]         # or ["*"]
//	    roles: [frontline]        # optional: these roles and every role inheriting them
//	    when: 'context.payment == "efectivo"'
//	    reason: {es: "...", en: "..."}
//
// See testdata/restaurant.yaml for a complete, realistic policy.
//
// # Conditions
//
// A `when` is a CEL expression (https://cel.dev) that must type-check to
// bool when the policy is parsed. It sees:
//
//	member    map: id, login, role, team (strings)
//	customer  map: id, ref (strings), tags (list of strings), new (bool)
//	action    string, the action id
//	amount    int, minor units
//	context   map(string, dyn): free facts sent with the request
//	hour      int, 0-23 in the organisation's time zone
//	weekday   int, 1 = Monday ... 7 = Sunday
//
// Numbers in context that came from JSON are doubles: write
// int(context.order_total) to do integer arithmetic with amount. A runtime
// error (a missing context key, a type mismatch) makes a grant's condition
// false but a forbid rule's condition true (forbids fail closed: a missing
// fact must not open a door the owner closed); either way it is listed in
// Verdict.ConditionErrors. A rule's conditions run as one program (their
// conjunction); only on a condition_not_met refusal are they run one by one
// to name the first that failed (Verdict.Condition). The owner role is built
// in (OwnerRole). Use has(context.key) to test for presence. Conditions whose cost cannot be bounded when the policy is
// compiled run under a cost limit, so no expression can hang evaluation.
package policy
