package policy

import (
	"sync"
	"sync/atomic"
	"time"
)

// MaxAmount is the largest amount, in minor units, a policy or a request may
// carry (1e13 minor units: ten billion in a two-decimal currency). Keeping
// amounts far below the int64 range means budget arithmetic cannot overflow.
const MaxAmount int64 = 10_000_000_000_000

// MaxCustomerTags and MaxTagLen bound Request.CustomerTags (count, and bytes
// per tag), which lets conditions over tags be cost-bounded when the policy
// is compiled instead of on every evaluation.
const (
	MaxCustomerTags = 64
	MaxTagLen       = 128
)

// MaxSLA is the longest approval SLA a policy may declare.
const MaxSLA = 720 * time.Hour

// Budget scopes: whose spending a budget counts.
const (
	ScopeMember   = "member"
	ScopeCustomer = "customer"
	ScopeTeam     = "team"
	ScopeOrg      = "org"
)

// Budget periods: how long a budget lasts before it starts again, in the
// organisation's time zone.
const (
	PeriodDay   = "day"
	PeriodWeek  = "week" // ISO 8601 week, Monday start
	PeriodMonth = "month"
)

// What happens when an approval is not given within its SLA.
const (
	OnTimeoutEscalate = "escalate"
	OnTimeoutApprove  = "approve"
	OnTimeoutDeny     = "deny"
)

// Policy is a parsed, validated and compiled latitude policy. It is immutable
// and safe for concurrent use by many goroutines.
type Policy struct {
	currency string
	actions  []Action
	roles    []Role
	budgets  []Budget
	grants   []Grant
	forbids  []Forbid
	approval *Route
	warnings Errors
	// ruleLabels maps grant and forbid ids to their labels, when given.
	ruleLabels map[string]map[string]string

	actionIdx map[string]int
	roleIdx   map[string]*roleIndex
	// roleList is roleIdx's values in declaration order, for lookupRole.
	roleList  []*roleIndex
	budgetIdx map[string]int
	// anyRoleForbids[action] lists, in file order, the forbid rules that
	// apply to every role; used for members whose role the policy does not
	// know.
	anyRoleForbids [][]*forbidRule

	// acts recycles CEL activations between evaluations. It is a cache, not
	// state: nothing observable depends on what it holds.
	acts sync.Pool
	// day caches the period keys of the last day a request fell on (most
	// decisions of an organisation fall on the same day), so evaluating
	// does not allocate them again. A cache, not state, like acts.
	day atomic.Pointer[dayKey]
}

// dayKey is a day in a time zone and its period keys: key for the day
// ("2026-11-25"), and so the month, and week ("2026-W48").
type dayKey struct {
	loc       *time.Location
	y, m, d   int
	key, week string
	// from and to bound the day in Unix seconds, [from, to), so that an
	// instant can be found in it without converting it to a date; both 0
	// when the day's edges are not plain midnights (see newDayKey).
	from, to int64
}

// Action is one entry of the policy's action catalogue.
type Action struct {
	ID string
	// Label maps a language ("es", "en") to a human-readable name.
	Label map[string]string
	// Monetary actions cost money and are requested with an amount;
	// non-monetary ones (an exception to a rule) must be requested with 0.
	Monetary bool
}

// OwnerRole is the role of the owner created with the organisation. Every
// policy knows it: when the file does not declare it, the policy has it as a
// built-in role with no grants and no parents.
const OwnerRole = "owner"

// Role is a position in the organisation that grants are given to.
type Role struct {
	ID    string
	Label map[string]string
	// Inherits lists the roles whose grants this role also holds, as written
	// in the policy (direct parents only; see Policy.RolesReaching).
	Inherits []string
	// Builtin is true for the owner role when the file does not declare it.
	Builtin bool
}

// Budget is an amount that acts may spend per scope subject and period.
type Budget struct {
	ID string
	// Label is the budget's name for people ({es, en}); nil when the
	// policy gives none.
	Label  map[string]string
	Scope  string // ScopeMember, ScopeCustomer, ScopeTeam or ScopeOrg
	Period string // PeriodDay, PeriodWeek or PeriodMonth
	Limit  int64  // minor units, > 0
	// Hard budgets refuse (or route to approval) when exceeded; soft ones
	// allow the act and flag it for review.
	Hard bool
}

// Route says who approves a request above a member's latitude and how fast.
type Route struct {
	Approver   string        // role id
	SLA        time.Duration // time the approver has before OnTimeout applies
	OnTimeout  string        // OnTimeoutEscalate, OnTimeoutApprove or OnTimeoutDeny
	EscalateTo string        // role id; set only when OnTimeout is OnTimeoutEscalate
}

// Grant gives a role latitude to take some actions alone.
type Grant struct {
	ID      string
	Role    string
	Teams   []string // empty: every team
	Actions []string // action ids, or exactly ["*"] for every action
	// MaxAmount is the largest amount per act; meaningful for monetary
	// actions only.
	MaxAmount int64
	// Hard grants route amounts above MaxAmount to approval; soft ones allow
	// them and flag the act.
	Hard    bool
	Budgets []string // budget ids charged when the grant allows an act
	// When is the CEL condition (the conditions joined with &&); empty
	// means always.
	When string
	// Conditions are the conditions as written, in order, with their
	// labels; nil without a condition.
	Conditions []Condition
	// Label is the grant's name for people ({es, en}); nil when the
	// policy gives none (the id is shown).
	Label map[string]string
	// Above is the approval route when the amount is over MaxAmount or a
	// hard budget is exhausted: the grant's own, or the policy default, or
	// nil when the policy says `above: none` or has no default (deny).
	Above *Route
}

// Forbid is a rule that denies an action whatever the grants say.
type Forbid struct {
	ID      string
	Actions []string // action ids, or exactly ["*"]
	Roles   []string // empty: every role; otherwise these roles and their inheritors
	When    string   // CEL condition (the conditions joined with &&); empty means always
	Reason  map[string]string
	// Conditions and Label are as in Grant.
	Conditions []Condition
	Label      map[string]string
}

// Condition is one condition of a rule's `when`: a CEL expression and, when
// the policy gives one, what it means in words staff understand.
type Condition struct {
	When  string
	Label map[string]string // nil when the policy gives none
}

// grantRule is a grant compiled for evaluation.
type grantRule struct {
	Grant
	index    int // position in the file, for ordering
	allTeams bool
	teams    []string
	// charges are the grant's budgets as charges, but for the subject and
	// period key, which depend on the request.
	charges []Charge
	prg     *program   // nil when the grant has no condition
	conds   []*program // each condition alone, to say which one failed
	path    string     // "grants[3]" for messages
}

// forbidRule is a forbid compiled for evaluation.
type forbidRule struct {
	Forbid
	prg   *program
	conds []*program
}

// roleIndex holds, for one role, everything evaluation needs without
// walking the policy: the roles it reaches and, per action, the grants and
// forbids that may apply.
type roleIndex struct {
	id      string
	reach   []string
	grants  [][]*grantRule  // by action index; ordered by role distance, then file order
	forbids [][]*forbidRule // by action index; file order
}

// Currency returns the ISO 4217 code of the policy's amounts.
func (p *Policy) Currency() string { return p.currency }

// Action returns the catalogue entry with the given id.
func (p *Policy) Action(id string) (Action, bool) {
	i, ok := p.actionIdx[id]
	if !ok {
		return Action{}, false
	}
	return p.actions[i], true
}

// Actions returns the action catalogue in file order. The slice is a copy;
// the label maps are shared and must not be modified.
func (p *Policy) Actions() []Action { return append([]Action(nil), p.actions...) }

// HasRole reports whether the policy declares the role.
func (p *Policy) HasRole(id string) bool {
	_, ok := p.roleIdx[id]
	return ok
}

// Roles returns the roles in file order, then the built-in owner role when
// the file does not declare it. The slice is a copy; the
// label maps and inherits slices are shared and must not be modified.
func (p *Policy) Roles() []Role { return append([]Role(nil), p.roles...) }

// Budget returns the budget with the given id.
func (p *Policy) Budget(id string) (Budget, bool) {
	i, ok := p.budgetIdx[id]
	if !ok {
		return Budget{}, false
	}
	return p.budgets[i], true
}

// Budgets returns the declared budgets in file order.
func (p *Policy) Budgets() []Budget { return append([]Budget(nil), p.budgets...) }

// Grants returns the grants in file order. Grant.Above is resolved (the
// grant's own route or the policy default). The slice is a copy; nested
// slices and routes are shared and must not be modified.
func (p *Policy) Grants() []Grant { return append([]Grant(nil), p.grants...) }

// Forbids returns the forbid rules in file order. The slice is a copy; nested
// slices and maps are shared and must not be modified.
func (p *Policy) Forbids() []Forbid { return append([]Forbid(nil), p.forbids...) }

// RuleLabel returns the label of a grant or forbid rule in lang, or "" when
// the rule is unknown or has no label in that language.
func (p *Policy) RuleLabel(id, lang string) string {
	return p.ruleLabels[id][lang]
}

// DefaultApproval returns the policy's default approval route, if any.
func (p *Policy) DefaultApproval() (Route, bool) {
	if p.approval == nil {
		return Route{}, false
	}
	return *p.approval, true
}

// RolesReaching returns the role followed by every role it inherits,
// transitively, nearest first (breadth-first, in the order the policy lists
// them). It returns nil for a role the policy does not declare.
func (p *Policy) RolesReaching(role string) []string {
	ri, ok := p.roleIdx[role]
	if !ok {
		return nil
	}
	return append([]string(nil), ri.reach...)
}
