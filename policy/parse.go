package policy

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

var (
	idPattern       = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	teamPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
	langPattern     = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

const maxIDLen = 64

// Parse parses, validates and compiles a latitude policy written in YAML
// (see the package documentation for the format). On failure the error is
// an Errors value listing every problem found, sorted by position.
func Parse(src []byte) (p *Policy, err error) {
	ps := &parseState{}
	p = ps.parse(src)
	if len(ps.errs) > 0 {
		ps.errs.sort()
		if n := len(ps.errs); n > MaxErrors {
			last := ps.errs[MaxErrors-1]
			ps.errs = append(ps.errs[:MaxErrors-1:MaxErrors-1], Error{Line: last.Line, Column: last.Column,
				Msg: fmt.Sprintf("and %d more problems", n-MaxErrors+1), Format: "and %d more problems", Args: []any{n - MaxErrors + 1}})
		}
		return nil, ps.errs
	}
	return p, nil
}

// parseState accumulates problems while the document is walked.
type parseState struct {
	errs Errors

	actionIdx map[string]int
	actions   []Action
	roleIdx   map[string]int
	roles     []Role
	roleNodes []ast.Node // inherits node per role, for cycle errors
	budgetIdx map[string]int
	budgets   []Budget
	ruleIDs   map[string]bool // grant and forbid ids
	routes    map[*Route]routeSource
	condSize  int // bytes of every condition so far
}

// field is a key of a mapping with its value.
type field struct {
	key ast.Node
	val ast.Node // nil when the value is null
}

// pos returns the 1-based line and column of a node.
func pos(n ast.Node) (int, int) {
	if n == nil {
		return 0, 0
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && m.Values[0].Key != nil {
		n = m.Values[0].Key
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

func (ps *parseState) errorf(n ast.Node, path, format string, args ...any) {
	if _, done := n.(reportedNode); done {
		return // the node's problem was already reported
	}
	line, col := pos(n)
	ps.errs = append(ps.errs, newError(line, col, path, format, args...))
}

func (ps *parseState) parse(src []byte) *Policy {
	if len(bytes.TrimSpace(src)) == 0 {
		ps.errs = append(ps.errs, newError(1, 1, "", "policy is empty: expected a YAML mapping with currency, actions, roles and grants"))
		return nil
	}
	// The document is bounded before the YAML parser sees it: the parser's
	// memory grows with the square of the nesting depth.
	tokens, e := prescan(src)
	if e != nil {
		ps.errs = append(ps.errs, *e)
		return nil
	}
	file, err := parseYAML(tokens)
	if err != nil {
		ps.yamlError(err)
		return nil
	}
	var root ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		switch doc.Body.(type) {
		case *ast.CommentGroupNode, *ast.NullNode:
			continue
		}
		if root != nil {
			ps.errorf(doc.Body, "", "only one YAML document is allowed")
			return nil
		}
		root = doc.Body
	}
	if root == nil {
		ps.errs = append(ps.errs, newError(1, 1, "", "policy is empty: expected a YAML mapping with currency, actions, roles and grants"))
		return nil
	}
	return ps.policy(root)
}

// parseYAML calls the YAML parser, turning a panic inside it into an error:
// Parse must never panic, whatever the input.
func parseYAML(tokens token.Tokens) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("invalid YAML: %v", r)
		}
	}()
	return parser.Parse(tokens, 0)
}

func (ps *parseState) yamlError(err error) {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line, col := 0, 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line, col = tk.Position.Line, tk.Position.Column
		}
		ps.errs = append(ps.errs, newError(line, col, "", "YAML syntax error: %s", ye.GetMessage()))
		return
	}
	ps.errs = append(ps.errs, newError(1, 1, "", "YAML syntax error: %s", err.Error()))
}

// reportedNode wraps a node whose problem has already been reported, so that
// the checks downstream stay silent about it.
type reportedNode struct{ ast.Node }

// node unwraps anchors and tags and refuses aliases, which would make error
// positions ambiguous (and allow exponential documents). Null becomes nil.
func (ps *parseState) node(n ast.Node, path string) ast.Node {
	for range 16 {
		switch v := n.(type) {
		case nil:
			return nil
		case *ast.NullNode:
			return nil
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			line, col := pos(v)
			ps.errs = append(ps.errs, limitError(line, col, path, LimitAlias, 0, "YAML aliases are not supported; write the value out"))
			return reportedNode{v}
		default:
			return n
		}
	}
	ps.errorf(n, path, "too many nested YAML anchors or tags")
	return nil
}

// mapping returns the fields of a mapping node, reporting keys not in allowed.
func (ps *parseState) mapping(n ast.Node, path string, allowed ...string) (map[string]field, bool) {
	mn, ok := n.(*ast.MappingNode)
	if !ok {
		ps.errorf(n, path, "must be a mapping, got %s", kind(n))
		return nil, false
	}
	fields := make(map[string]field, len(mn.Values))
	for _, mv := range mn.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		var key ast.Node = mv.Key
		name, isString := scalarString(ps.node(key, path))
		if !isString {
			ps.errorf(key, path, "keys must be strings")
			continue
		}
		fpath := join(path, name)
		if !slices.Contains(allowed, name) {
			ps.errorf(key, fpath, "unknown field %q (allowed: %s)", name, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := fields[name]; dup {
			ps.errorf(key, fpath, "duplicate field %q", name)
			continue
		}
		fields[name] = field{key: key, val: ps.node(mv.Value, fpath)}
	}
	return fields, true
}

// required reports a missing or null required field and says whether it is
// present.
func (ps *parseState) required(fields map[string]field, name string, parent ast.Node, path string) bool {
	f, ok := fields[name]
	if !ok {
		ps.errorf(parent, join(path, name), "%s is required", name)
		return false
	}
	if f.val == nil {
		ps.errorf(f.key, join(path, name), "%s must not be empty", name)
		return false
	}
	return true
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func kind(n ast.Node) string {
	switch n.(type) {
	case nil:
		return "null"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a decimal number"
	case *ast.BoolNode:
		return "a boolean"
	default:
		return "a " + strings.ToLower(n.Type().String())
	}
}

func scalarString(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	}
	return "", false
}

func (ps *parseState) str(n ast.Node, path string) (string, bool) {
	s, ok := scalarString(n)
	if !ok {
		ps.errorf(n, path, "must be a string, got %s", kind(n))
	}
	return s, ok
}

func (ps *parseState) boolean(n ast.Node, path string) (bool, bool) {
	b, ok := n.(*ast.BoolNode)
	if !ok {
		ps.errorf(n, path, "must be true or false, got %s", kind(n))
		return false, false
	}
	return b.Value, true
}

// amount parses a non-negative amount of minor units, at most MaxAmount.
func (ps *parseState) amount(n ast.Node, path string) (int64, bool) {
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		ps.errorf(n, path, "must be a whole number of minor units (cents), got %s", kind(n))
		return 0, false
	}
	var v int64
	switch x := in.Value.(type) {
	case int64:
		v = x
	case uint64:
		if x > math.MaxInt64 {
			ps.errorf(n, path, "must be at most %d", MaxAmount)
			return 0, false
		}
		v = int64(x)
	default:
		ps.errorf(n, path, "must be a whole number of minor units (cents)")
		return 0, false
	}
	if v < 0 {
		ps.errorf(n, path, "must not be negative")
		return 0, false
	}
	if v > MaxAmount {
		ps.errorf(n, path, "must be at most %d", MaxAmount)
		return 0, false
	}
	return v, true
}

// id parses an id. It returns the text even when it is malformed (ok is
// then false), so that the element can still be registered and references
// to it do not produce a second, misleading error.
func (ps *parseState) id(n ast.Node, path string) (string, bool) {
	s, ok := ps.str(n, path)
	if !ok {
		return "", false
	}
	if len(s) > maxIDLen || !idPattern.MatchString(s) {
		ps.errorf(n, path, "invalid id %q: use lowercase letters, digits and _ , starting with a letter, at most %d characters", s, maxIDLen)
		return s, false
	}
	return s, true
}

// list returns the elements of a sequence node of at most MaxListLen
// elements.
func (ps *parseState) list(n ast.Node, path string) ([]ast.Node, bool) {
	return ps.listMax(n, path, MaxListLen, LimitList)
}

// listMax is list with a limit on the number of elements, named by what
// (LimitList or LimitEntries) in the error.
func (ps *parseState) listMax(n ast.Node, path string, limit int, what string) ([]ast.Node, bool) {
	sn, ok := n.(*ast.SequenceNode)
	if !ok {
		ps.errorf(n, path, "must be a list, got %s", kind(n))
		return nil, false
	}
	if len(sn.Values) > limit {
		line, col := pos(n)
		ps.errs = append(ps.errs, limitError(line, col, path, what, limit, "too many entries (%d, at most %d)", len(sn.Values), limit))
		return nil, false
	}
	out := make([]ast.Node, len(sn.Values))
	for i, v := range sn.Values {
		out[i] = ps.node(v, index(path, i))
	}
	return out, true
}

// strList parses a list of strings, checking each with check (which reports
// its own errors) and refusing duplicates.
func (ps *parseState) strList(n ast.Node, path string, check func(s string, n ast.Node, path string) bool) ([]string, bool) {
	elems, ok := ps.list(n, path)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(elems))
	allOK := true
	for i, e := range elems {
		epath := index(path, i)
		s, ok := ps.str(e, epath)
		if !ok {
			allOK = false
			continue
		}
		if slices.Contains(out, s) {
			ps.errorf(e, epath, "duplicate entry %q", s)
			allOK = false
			continue
		}
		if check != nil && !check(s, e, epath) {
			allOK = false
			continue
		}
		out = append(out, s)
	}
	return out, allOK
}

// nonEmpty refuses an explicit empty list where leaving the field out means
// "all": `teams: []` reads as "no team" but would mean every team.
func (ps *parseState) nonEmpty(n ast.Node, path, what string) {
	if sn, ok := n.(*ast.SequenceNode); ok && len(sn.Values) == 0 {
		ps.errorf(n, path, "list at least one %s, or remove the field to mean all", what)
	}
}

// label parses a {es: ..., en: ...} mapping of texts; es and en are required.
func (ps *parseState) label(n ast.Node, path string) map[string]string {
	mn, ok := n.(*ast.MappingNode)
	if !ok {
		ps.errorf(n, path, "must be a mapping of language to text, like {es: \"...\", en: \"...\"}, got %s", kind(n))
		return nil
	}
	out := make(map[string]string, 2)
	seen := make(map[string]bool, 2)
	for _, mv := range mn.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		lang, isString := scalarString(ps.node(mv.Key, path))
		if !isString || !langPattern.MatchString(lang) {
			ps.errorf(mv.Key, path, "keys must be language codes such as es or en")
			continue
		}
		lpath := join(path, lang)
		if seen[lang] {
			ps.errorf(mv.Key, lpath, "duplicate language %q", lang)
			continue
		}
		seen[lang] = true
		v := ps.node(mv.Value, lpath)
		text, ok := ps.str(v, lpath)
		if !ok {
			continue
		}
		if strings.TrimSpace(text) == "" {
			ps.errorf(v, lpath, "must not be empty")
			continue
		}
		out[lang] = text
	}
	for _, lang := range []string{"es", "en"} {
		if !seen[lang] {
			ps.errorf(n, join(path, lang), "a text in %q is required", lang)
		}
	}
	return out
}

// rawRule keeps what is needed to finish a grant or forbid once every
// catalogue is known.
type rawRule struct {
	path  string
	when  string // the conditions joined with &&, as Grant.When shows them
	conds []rawCond
}

// rawCond is one condition of a `when`, where it was written.
type rawCond struct {
	Condition
	node ast.Node
	path string
}

// MaxConditions bounds the conditions of one `when` list.
const MaxConditions = 16

func (ps *parseState) policy(root ast.Node) *Policy {
	fields, ok := ps.mapping(root, "", "currency", "actions", "roles", "budgets", "approval", "grants", "forbid")
	if !ok {
		return nil
	}
	p := &Policy{}
	if ps.required(fields, "currency", root, "") {
		f := fields["currency"]
		if s, ok := ps.str(f.val, "currency"); ok {
			if !currencyPattern.MatchString(s) {
				ps.errorf(f.val, "currency", "invalid currency %q: use an ISO 4217 code of three uppercase letters, like COP", s)
			}
			p.currency = s
		}
	}
	ps.actionIdx = map[string]int{}
	ps.roleIdx = map[string]int{}
	ps.budgetIdx = map[string]int{}
	ps.ruleIDs = map[string]bool{}
	ps.routes = map[*Route]routeSource{}
	if ps.required(fields, "actions", root, "") {
		ps.parseActions(fields["actions"].val)
	}
	if ps.required(fields, "roles", root, "") {
		ps.parseRoles(fields["roles"].val)
	}
	if f, ok := fields["budgets"]; ok && f.val != nil {
		ps.parseBudgets(f.val)
	}
	if f, ok := fields["approval"]; ok && f.val != nil {
		p.approval = ps.route(f.val, "approval")
	}

	var grants []*grantRule
	var grantRaw []rawRule
	if f, ok := fields["grants"]; ok && f.val != nil {
		grants, grantRaw = ps.parseGrants(f.val, p.approval)
	}
	var forbids []*forbidRule
	var forbidRaw []rawRule
	if f, ok := fields["forbid"]; ok && f.val != nil {
		forbids, forbidRaw = ps.parseForbids(f.val)
	}

	// Conditions are compiled even when other problems were found, so that
	// one run reports everything.
	comp, err := newCompiler()
	if err != nil {
		ps.errs = append(ps.errs, Error{Msg: "internal error: " + err.Error()})
		return nil
	}
	for i, g := range grants {
		g.prg, g.conds = ps.compile(comp, grantRaw[i])
	}
	for i, f := range forbids {
		f.prg, f.conds = ps.compile(comp, forbidRaw[i])
	}
	if len(ps.errs) > 0 {
		return nil
	}
	p.actions = ps.actions
	p.roles = ps.roles
	p.budgets = ps.budgets
	p.actionIdx = ps.actionIdx
	p.budgetIdx = ps.budgetIdx
	p.build(grants, forbids)
	p.warnings = ps.routeWarnings(p, grants)
	return p
}

// compile compiles each condition of a rule, and their conjunction, which
// is what evaluation runs; the single conditions serve only to say which
// one failed. It returns nil programs for a rule without conditions.
func (ps *parseState) compile(comp *compiler, r rawRule) (*program, []*program) {
	if len(r.conds) == 0 {
		return nil, nil
	}
	conds := make([]*program, len(r.conds))
	for i, c := range r.conds {
		prg, msg, limit := comp.compile(c.When)
		if msg != "" {
			ps.conditionError(c.node, c.path, msg, limit)
			return nil, nil
		}
		conds[i] = prg
	}
	if len(conds) == 1 {
		return conds[0], conds
	}
	prg, msg, limit := comp.plan(r.when)
	if msg != "" {
		ps.conditionError(r.conds[0].node, join(r.path, "when"), msg, limit)
		return nil, nil
	}
	return prg, conds
}

// conditionError reports a condition that does not compile, naming the
// limit it broke if that is the problem.
func (ps *parseState) conditionError(n ast.Node, path, msg, limit string) {
	line, col := pos(n)
	e := Error{Line: line, Column: col, Path: path, Msg: msg}
	switch limit {
	case LimitCondition:
		e.Limit, e.Max = limit, MaxConditionLen
	case LimitConditionDepth:
		e.Limit, e.Max = limit, MaxConditionDepth
	}
	ps.errs = append(ps.errs, e)
}

func (ps *parseState) parseActions(n ast.Node) {
	elems, ok := ps.listMax(n, "actions", MaxActions, LimitEntries)
	if !ok {
		return
	}
	if len(elems) == 0 {
		ps.errorf(n, "actions", "at least one action is required")
	}
	for i, e := range elems {
		path := index("actions", i)
		fields, ok := ps.mapping(e, path, "id", "label", "monetary")
		if !ok {
			continue
		}
		a := Action{Monetary: true}
		if ps.required(fields, "id", e, path) {
			f := fields["id"]
			if id, _ := ps.id(f.val, join(path, "id")); id != "" {
				if _, dup := ps.actionIdx[id]; dup {
					ps.errorf(f.val, join(path, "id"), "duplicate action id %q", id)
				} else {
					a.ID = id
				}
			}
		}
		if ps.required(fields, "label", e, path) {
			a.Label = ps.label(fields["label"].val, join(path, "label"))
		}
		if f, ok := fields["monetary"]; ok && f.val != nil {
			a.Monetary, _ = ps.boolean(f.val, join(path, "monetary"))
		}
		if a.ID != "" {
			ps.actionIdx[a.ID] = len(ps.actions)
			ps.actions = append(ps.actions, a)
		}
	}
}

func (ps *parseState) parseRoles(n ast.Node) {
	elems, ok := ps.listMax(n, "roles", MaxRoles, LimitEntries)
	if !ok {
		return
	}
	if len(elems) == 0 {
		ps.errorf(n, "roles", "at least one role is required")
	}
	type pending struct {
		node ast.Node
		path string
	}
	var inherits []pending
	for i, e := range elems {
		path := index("roles", i)
		fields, ok := ps.mapping(e, path, "id", "label", "inherits")
		if !ok {
			continue
		}
		var r Role
		if ps.required(fields, "id", e, path) {
			f := fields["id"]
			if id, _ := ps.id(f.val, join(path, "id")); id != "" {
				if _, dup := ps.roleIdx[id]; dup {
					ps.errorf(f.val, join(path, "id"), "duplicate role id %q", id)
				} else {
					r.ID = id
				}
			}
		}
		if ps.required(fields, "label", e, path) {
			r.Label = ps.label(fields["label"].val, join(path, "label"))
		}
		if r.ID == "" {
			continue
		}
		ps.roleIdx[r.ID] = len(ps.roles)
		ps.roles = append(ps.roles, r)
		var inh ast.Node
		if f, ok := fields["inherits"]; ok && f.val != nil {
			inh = f.val
		}
		inherits = append(inherits, pending{node: inh, path: join(path, "inherits")})
		ps.roleNodes = append(ps.roleNodes, inh)
	}
	// References are resolved once every role id is known, so a role may
	// inherit from one declared after it.
	for i, pd := range inherits {
		if pd.node == nil {
			continue
		}
		self := ps.roles[i].ID
		list, _ := ps.strList(pd.node, pd.path, func(s string, n ast.Node, path string) bool {
			if s == self {
				ps.errorf(n, path, "role %q cannot inherit from itself", s)
				return false
			}
			if _, ok := ps.roleIdx[s]; !ok {
				ps.errorf(n, path, "unknown role %q", s)
				return false
			}
			return true
		})
		ps.roles[i].Inherits = list
	}
	ps.checkCycles()
	// The owner created with the organisation has the role owner; a policy
	// need not declare it (owners answer any approval request whatever the
	// policy says), but may, to give owners grants or inherit other roles.
	if _, declared := ps.roleIdx[OwnerRole]; !declared {
		ps.roleIdx[OwnerRole] = len(ps.roles)
		ps.roles = append(ps.roles, Role{ID: OwnerRole, Label: map[string]string{"es": "Propietario", "en": "Owner"}, Builtin: true})
		ps.roleNodes = append(ps.roleNodes, nil)
	}
}

// checkCycles reports every inheritance cycle once, at the inherits list of
// the role where the walk closes it.
func (ps *parseState) checkCycles() {
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(ps.roles))
	var stack []int
	reported := map[string]bool{}
	var visit func(i int)
	visit = func(i int) {
		state[i] = active
		stack = append(stack, i)
		for _, parent := range ps.roles[i].Inherits {
			j := ps.roleIdx[parent]
			switch state[j] {
			case unvisited:
				visit(j)
			case active:
				start := slices.Index(stack, j)
				cycle := make([]string, 0, len(stack)-start+1)
				for _, k := range stack[start:] {
					cycle = append(cycle, ps.roles[k].ID)
				}
				cycle = append(cycle, ps.roles[j].ID)
				key := canonicalCycle(cycle)
				if !reported[key] {
					reported[key] = true
					ps.errorf(ps.roleNodes[j], index("roles", j)+".inherits", "inheritance cycle: %s", strings.Join(cycle, " -> "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range ps.roles {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

func canonicalCycle(cycle []string) string {
	c := slices.Clone(cycle[:len(cycle)-1])
	slices.Sort(c)
	return strings.Join(c, ",")
}

func (ps *parseState) parseBudgets(n ast.Node) {
	elems, ok := ps.listMax(n, "budgets", MaxBudgets, LimitEntries)
	if !ok {
		return
	}
	for i, e := range elems {
		path := index("budgets", i)
		fields, ok := ps.mapping(e, path, "id", "label", "scope", "period", "limit", "hard")
		if !ok {
			continue
		}
		b := Budget{Hard: true}
		if ps.required(fields, "id", e, path) {
			f := fields["id"]
			if id, _ := ps.id(f.val, join(path, "id")); id != "" {
				if _, dup := ps.budgetIdx[id]; dup {
					ps.errorf(f.val, join(path, "id"), "duplicate budget id %q", id)
				} else {
					b.ID = id
				}
			}
		}
		if ps.required(fields, "scope", e, path) {
			b.Scope, _ = ps.enum(fields["scope"].val, join(path, "scope"), ScopeMember, ScopeCustomer, ScopeTeam, ScopeOrg)
		}
		if ps.required(fields, "period", e, path) {
			b.Period, _ = ps.enum(fields["period"].val, join(path, "period"), PeriodDay, PeriodWeek, PeriodMonth)
		}
		if ps.required(fields, "limit", e, path) {
			f := fields["limit"]
			if v, ok := ps.amount(f.val, join(path, "limit")); ok {
				if v == 0 {
					ps.errorf(f.val, join(path, "limit"), "must be greater than 0")
				}
				b.Limit = v
			}
		}
		if f, ok := fields["hard"]; ok && f.val != nil {
			b.Hard, _ = ps.boolean(f.val, join(path, "hard"))
		}
		if f, ok := fields["label"]; ok && f.val != nil {
			b.Label = ps.label(f.val, join(path, "label"))
		}
		if b.ID != "" {
			ps.budgetIdx[b.ID] = len(ps.budgets)
			ps.budgets = append(ps.budgets, b)
		}
	}
}

func (ps *parseState) enum(n ast.Node, path string, allowed ...string) (string, bool) {
	s, ok := ps.str(n, path)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		ps.errorf(n, path, "invalid value %q (allowed: %s)", s, strings.Join(allowed, ", "))
		return "", false
	}
	return s, true
}

func (ps *parseState) roleRef(n ast.Node, path string) (string, bool) {
	s, ok := ps.str(n, path)
	if !ok {
		return "", false
	}
	if _, known := ps.roleIdx[s]; !known {
		ps.errorf(n, path, "unknown role %q", s)
		return "", false
	}
	return s, true
}

// route parses an approval route mapping.
func (ps *parseState) route(n ast.Node, path string) *Route {
	fields, ok := ps.mapping(n, path, "approver", "sla", "on_timeout", "escalate_to")
	if !ok {
		return nil
	}
	r := &Route{}
	if ps.required(fields, "approver", n, path) {
		r.Approver, _ = ps.roleRef(fields["approver"].val, join(path, "approver"))
	}
	if ps.required(fields, "sla", n, path) {
		f := fields["sla"]
		spath := join(path, "sla")
		if s, ok := scalarString(f.val); ok {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				ps.errorf(f.val, spath, "invalid duration %q: write it like 10m, 2h or 1h30m", s)
			case d <= 0:
				ps.errorf(f.val, spath, "must be greater than 0")
			case d > MaxSLA:
				ps.errorf(f.val, spath, "must be at most %s", MaxSLA)
			default:
				r.SLA = d
			}
		} else {
			ps.errorf(f.val, spath, "must be a duration like 10m, 2h or 1h30m, got %s", kind(f.val))
		}
	}
	if ps.required(fields, "on_timeout", n, path) {
		r.OnTimeout, _ = ps.enum(fields["on_timeout"].val, join(path, "on_timeout"), OnTimeoutEscalate, OnTimeoutApprove, OnTimeoutDeny)
	}
	f, hasEscalate := fields["escalate_to"]
	hasEscalate = hasEscalate && f.val != nil
	switch {
	case r.OnTimeout == OnTimeoutEscalate && !hasEscalate:
		ps.errorf(n, join(path, "escalate_to"), "escalate_to is required when on_timeout is escalate")
	case r.OnTimeout != OnTimeoutEscalate && r.OnTimeout != "" && hasEscalate:
		ps.errorf(f.key, join(path, "escalate_to"), "escalate_to is only allowed when on_timeout is escalate")
	case hasEscalate:
		r.EscalateTo, _ = ps.roleRef(f.val, join(path, "escalate_to"))
	}
	src := routeSource{path: path, approver: fields["approver"].val}
	if hasEscalate {
		src.escalate = f.val
	}
	ps.routes[r] = src
	return r
}

// ruleID parses a grant or forbid id, unique across both lists.
func (ps *parseState) ruleID(fields map[string]field, n ast.Node, path string) string {
	if !ps.required(fields, "id", n, path) {
		return ""
	}
	f := fields["id"]
	id, _ := ps.id(f.val, join(path, "id"))
	if id == "" {
		return ""
	}
	if ps.ruleIDs[id] {
		ps.errorf(f.val, join(path, "id"), "duplicate rule id %q (grant and forbid ids share one namespace)", id)
		return ""
	}
	ps.ruleIDs[id] = true
	return id
}

// actionList parses a list of action ids or ["*"].
func (ps *parseState) actionList(fields map[string]field, n ast.Node, path string) ([]string, bool) {
	if !ps.required(fields, "actions", n, path) {
		return nil, false
	}
	f := fields["actions"]
	apath := join(path, "actions")
	list, ok := ps.strList(f.val, apath, func(s string, n ast.Node, path string) bool {
		if s == "*" {
			return true
		}
		if _, known := ps.actionIdx[s]; !known {
			ps.errorf(n, path, "unknown action %q", s)
			return false
		}
		return true
	})
	if ok && len(list) == 0 {
		ps.errorf(f.val, apath, "at least one action is required")
		return nil, false
	}
	if ok && len(list) > 1 && slices.Contains(list, "*") {
		ps.errorf(f.val, apath, `"*" must be the only entry`)
		return nil, false
	}
	return list, ok
}

// when parses a rule's condition: a CEL expression, a labelled one
// ({if: "...", label: {es, en}}), or a list of them that must all hold.
func (ps *parseState) when(fields map[string]field, path string) rawRule {
	r := rawRule{path: path}
	f, ok := fields["when"]
	if !ok || f.val == nil {
		return r
	}
	wpath := join(path, "when")
	if sn, isList := f.val.(*ast.SequenceNode); isList {
		if len(sn.Values) == 0 {
			ps.errorf(f.val, wpath, "list at least one condition, or remove the field for no condition")
			return r
		}
		elems, ok := ps.listMax(f.val, wpath, MaxConditions, LimitList)
		if !ok {
			return r
		}
		for i, e := range elems {
			if c, ok := ps.condition(e, index(wpath, i)); ok {
				r.conds = append(r.conds, c)
			}
		}
	} else if c, ok := ps.condition(f.val, wpath); ok {
		r.conds = append(r.conds, c)
	}
	if len(r.conds) == 1 {
		r.when = r.conds[0].When
	} else if len(r.conds) > 1 {
		parts := make([]string, len(r.conds))
		for i, c := range r.conds {
			parts[i] = "(" + c.When + ")"
		}
		r.when = strings.Join(parts, " && ")
	}
	return r
}

// condition parses one condition: a string, or {if: "...", label: {es, en}}.
func (ps *parseState) condition(n ast.Node, path string) (rawCond, bool) {
	c := rawCond{path: path, node: n}
	if _, isMap := n.(*ast.MappingNode); isMap {
		fields, ok := ps.mapping(n, path, "if", "label")
		if !ok {
			return c, false
		}
		if ps.required(fields, "label", n, path) {
			c.Label = ps.label(fields["label"].val, join(path, "label"))
		}
		if !ps.required(fields, "if", n, path) {
			return c, false
		}
		path = join(path, "if")
		c.path, c.node = path, fields["if"].val
	}
	s, ok := ps.str(c.node, path)
	if !ok {
		return c, false
	}
	if strings.TrimSpace(s) == "" {
		ps.errorf(c.node, path, "must not be empty; remove it for no condition")
		return c, false
	}
	ps.condSize += len(s)
	if ps.condSize > MaxConditionsSize {
		if ps.condSize-len(s) <= MaxConditionsSize { // report it once
			line, col := pos(c.node)
			ps.errs = append(ps.errs, limitError(line, col, path, LimitConditionsSize, MaxConditionsSize,
				"the conditions are too long together (more than %d bytes)", MaxConditionsSize))
		}
		return c, false
	}
	c.When = s
	return c, true
}

func (ps *parseState) parseGrants(n ast.Node, def *Route) ([]*grantRule, []rawRule) {
	elems, ok := ps.listMax(n, "grants", MaxGrants, LimitEntries)
	if !ok {
		return nil, nil
	}
	var out []*grantRule
	var raws []rawRule
	for i, e := range elems {
		path := index("grants", i)
		fields, ok := ps.mapping(e, path, "id", "label", "role", "teams", "actions", "max_amount", "hard", "budgets", "when", "above")
		if !ok {
			continue
		}
		g := &grantRule{index: i, path: path}
		g.Hard = true
		g.ID = ps.ruleID(fields, e, path)
		if ps.required(fields, "role", e, path) {
			g.Role, _ = ps.roleRef(fields["role"].val, join(path, "role"))
		}
		if f, ok := fields["teams"]; ok && f.val != nil {
			ps.nonEmpty(f.val, join(path, "teams"), "team")
			g.Teams, _ = ps.strList(f.val, join(path, "teams"), func(s string, n ast.Node, path string) bool {
				if len(s) > maxIDLen || !teamPattern.MatchString(s) {
					ps.errorf(n, path, "invalid team slug %q: use lowercase letters, digits, - and _", s)
					return false
				}
				return true
			})
		}
		actions, actionsOK := ps.actionList(fields, e, path)
		g.Actions = actions
		hasMax := false
		if f, ok := fields["max_amount"]; ok && f.val != nil {
			g.MaxAmount, hasMax = ps.amount(f.val, join(path, "max_amount"))
			hasMax = true // present, even if invalid: do not also report it missing
		}
		if actionsOK && !hasMax {
			if m := ps.monetaryIn(actions); m != "" {
				ps.errorf(e, join(path, "max_amount"), "max_amount is required because action %q is monetary", m)
			}
		}
		if f, ok := fields["hard"]; ok && f.val != nil {
			g.Hard, _ = ps.boolean(f.val, join(path, "hard"))
		}
		if f, ok := fields["budgets"]; ok && f.val != nil {
			g.Budgets, _ = ps.strList(f.val, join(path, "budgets"), func(s string, n ast.Node, path string) bool {
				if _, known := ps.budgetIdx[s]; !known {
					ps.errorf(n, path, "unknown budget %q", s)
					return false
				}
				return true
			})
		}
		if f, ok := fields["label"]; ok && f.val != nil {
			g.Label = ps.label(f.val, join(path, "label"))
		}
		raw := ps.when(fields, path)
		g.When = raw.when
		g.Conditions = conditions(raw)
		g.Above = def
		if f, ok := fields["above"]; ok && f.val != nil {
			apath := join(path, "above")
			if s, isStr := scalarString(f.val); isStr {
				if s == "none" {
					g.Above = nil
				} else {
					ps.errorf(f.val, apath, "must be an approval route {approver, sla, on_timeout} or none, got %q", s)
				}
			} else {
				g.Above = ps.route(f.val, apath)
			}
		}
		out = append(out, g)
		raws = append(raws, raw)
	}
	return out, raws
}

// conditions returns a rule's parsed conditions, nil when it has none.
func conditions(r rawRule) []Condition {
	if len(r.conds) == 0 {
		return nil
	}
	out := make([]Condition, len(r.conds))
	for i, c := range r.conds {
		out[i] = c.Condition
	}
	return out
}

// monetaryIn returns the first monetary action among ids ("*" means all).
func (ps *parseState) monetaryIn(ids []string) string {
	for _, id := range ids {
		if id == "*" {
			for _, a := range ps.actions {
				if a.Monetary {
					return a.ID
				}
			}
			continue
		}
		if i, ok := ps.actionIdx[id]; ok && ps.actions[i].Monetary {
			return id
		}
	}
	return ""
}

func (ps *parseState) parseForbids(n ast.Node) ([]*forbidRule, []rawRule) {
	elems, ok := ps.listMax(n, "forbid", MaxForbids, LimitEntries)
	if !ok {
		return nil, nil
	}
	var out []*forbidRule
	var raws []rawRule
	for i, e := range elems {
		path := index("forbid", i)
		fields, ok := ps.mapping(e, path, "id", "label", "actions", "roles", "when", "reason")
		if !ok {
			continue
		}
		f := &forbidRule{}
		f.ID = ps.ruleID(fields, e, path)
		f.Actions, _ = ps.actionList(fields, e, path)
		if fr, ok := fields["roles"]; ok && fr.val != nil {
			ps.nonEmpty(fr.val, join(path, "roles"), "role")
			f.Roles, _ = ps.strList(fr.val, join(path, "roles"), func(s string, n ast.Node, path string) bool {
				if _, known := ps.roleIdx[s]; !known {
					ps.errorf(n, path, "unknown role %q", s)
					return false
				}
				return true
			})
		}
		if ps.required(fields, "reason", e, path) {
			f.Reason = ps.label(fields["reason"].val, join(path, "reason"))
		}
		if fl, ok := fields["label"]; ok && fl.val != nil {
			f.Label = ps.label(fl.val, join(path, "label"))
		}
		raw := ps.when(fields, path)
		f.When = raw.when
		f.Conditions = conditions(raw)
		out = append(out, f)
		raws = append(raws, raw)
	}
	return out, raws
}
