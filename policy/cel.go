package policy

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

const (
	// costLimit bounds the runtime cost of one condition (roughly, the
	// number of operations). A realistic condition costs under a hundred;
	// the limit only stops pathological comprehensions over large context
	// values.
	costLimit = 100_000
)

// celEnv is built once: an Env is immutable after construction and safe for
// concurrent use, and building one costs far more than parsing a policy.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	dynMap := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.Variable("member", dynMap),
		cel.Variable("customer", dynMap),
		cel.Variable("action", cel.StringType),
		cel.Variable("amount", cel.IntType),
		cel.Variable("context", dynMap),
		cel.Variable("hour", cel.IntType),
		cel.Variable("weekday", cel.IntType),
		// Context values decoded from JSON are doubles; let `context.total
		// > 100` compare them with ints as a person would expect.
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxConditionLen),
		cel.ParserRecursionLimit(MaxConditionDepth),
	)
})

type compiler struct{ env *cel.Env }

func newCompiler() (*compiler, error) {
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	return &compiler{env: env}, nil
}

// program is one compiled condition.
type program struct {
	prg cel.Program
	// tracked reports a runtime cost limit: such a program gets an
	// execution frame of its own (its cost tracker lives on the frame).
	tracked bool
	// native is the condition compiled to Go closures (see celnative.go),
	// nil when it uses anything outside that subset or is tracked. It
	// answers without the interpreter or gives up, and then prg answers.
	native native
}

// compile type-checks a condition and plans it. It returns a message for the
// policy author instead of an error, and the limit the condition broke
// (LimitCondition, LimitConditionDepth) if that is the problem.
func (c *compiler) compile(src string) (prg *program, msg, limit string) {
	defer func() {
		if r := recover(); r != nil {
			prg, msg, limit = nil, fmt.Sprintf("invalid condition: %v", r), ""
		}
	}()
	if n := utf8.RuneCountInString(src); n > MaxConditionLen {
		return nil, fmt.Sprintf("condition is too long (%d characters, at most %d)", n, MaxConditionLen), LimitCondition
	}
	return c.plan(src)
}

// plan is compile without the length limit, for the conjunction of a rule's
// conditions (each of which was checked).
func (c *compiler) plan(src string) (prg *program, msg, limit string) {
	defer func() {
		if r := recover(); r != nil {
			prg, msg, limit = nil, fmt.Sprintf("invalid condition: %v", r), ""
		}
	}()
	checked, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			if strings.Contains(e.Message, "recursion limit exceeded") {
				return nil, fmt.Sprintf("condition is nested too deeply (at most %d levels)", MaxConditionDepth), LimitConditionDepth
			}
		}
		var parts []string
		for _, e := range iss.Errors() {
			if e.Location != nil && e.Location.Line() > 0 {
				parts = append(parts, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
			} else {
				parts = append(parts, e.Message)
			}
		}
		return nil, "invalid condition: " + strings.Join(parts, "; "), ""
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Sprintf("condition must be true or false, but it is of type %s (compare it, e.g. `... == true`)", checked.OutputType()), ""
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	// Tracking cost at runtime costs time on every evaluation, so it is
	// enabled only for conditions whose worst case cannot be bounded
	// statically (comprehensions or string functions over inputs of unknown
	// size).
	est, err := c.env.EstimateCost(checked, sizeEstimator{})
	tracked := err != nil || est.Max > costLimit
	if tracked {
		opts = append(opts, cel.CostLimit(costLimit))
	}
	p, err := c.env.Program(checked, opts...)
	if err != nil {
		return nil, "invalid condition: " + err.Error(), ""
	}
	prog := &program{prg: p, tracked: tracked}
	if !tracked {
		prog.native = compileNative(checked.NativeRep())
	}
	return prog, "", ""
}

// sizeEstimator bounds the inputs whose size Evaluate enforces (customer
// tags); every other input is of unknown size, so a condition iterating over
// it gets a runtime cost limit.
type sizeEstimator struct{}

// EstimateSize implements cost.Estimator.
func (sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	path := n.Path()
	if len(path) < 2 || path[0] != "customer" || path[1] != "tags" {
		return nil
	}
	if len(path) == 2 {
		est := cost.RangedSizeEstimate(0, MaxCustomerTags)
		return &est
	}
	est := cost.RangedSizeEstimate(0, MaxTagLen)
	return &est
}

// EstimateCallCost implements cost.Estimator with the default costs.
func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// eval runs a condition. A runtime error (a missing context key, a type
// mismatch, the cost limit) makes the condition false and is returned as a
// message.
func (p *program) eval(a *activation) (bool, string) {
	if p.native != nil {
		if v := p.native(a); v.k == kBool {
			return v.b, ""
		}
	}
	return p.interpret(a)
}

// interpret runs a condition in the CEL interpreter.
func (p *program) interpret(a *activation) (bool, string) {
	var in any = a
	if !p.tracked {
		in = a.input()
	}
	out, _, err := p.prg.Eval(in)
	if err != nil {
		return false, err.Error()
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Sprintf("condition returned %s, not a bool", out.Type().TypeName())
	}
	return bool(b), ""
}

// activation exposes a Request to CEL without building a map per request:
// variables are resolved by a switch and member and customer are small
// map-like values that build a real CEL map only when an expression needs
// more than a key lookup.
type activation struct {
	r        *Request
	clockSet bool
	hour     int64
	weekday  int64
	// amount is r.Amount boxed once per request (types.Int in an interface
	// allocates), whatever number of conditions read it.
	amount   ref.Val
	member   memberVal
	customer customerVal
	// frame is one CEL execution frame shared by the untracked programs of
	// one evaluation instead of one taken from and returned to CEL's pool
	// per program. It lives between reset(r) and reset(nil).
	frame *interpreter.ExecutionFrame
}

var (
	_ interpreter.Activation = (*activation)(nil)
	_ traits.Mapper          = (*memberVal)(nil)
	_ traits.Mapper          = (*customerVal)(nil)
	_ traits.Lister          = (*tagsVal)(nil)
)

// reset points a (possibly recycled) activation at a request, dropping
// everything cached for the previous one.
func (a *activation) reset(r *Request) {
	if a.frame != nil {
		a.frame.Close()
	}
	*a = activation{r: r}
	a.member.r = r
	a.customer.r = r
	if r != nil {
		a.customer.tags.tags = r.CustomerTags
	}
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "amount":
		if a.amount == nil {
			a.amount = types.Int(a.r.Amount)
		}
		return a.amount, true
	case "action":
		return types.String(a.r.Action), true
	case "context":
		return a.r.Context, true
	case "member":
		return &a.member, true
	case "customer":
		return &a.customer, true
	case "hour":
		a.clock()
		return types.Int(a.hour), true
	case "weekday":
		a.clock()
		return types.Int(a.weekday), true
	}
	return nil, false
}

// input returns what an untracked program evaluates against: the
// activation's frame, made on first use. The frame holds no state between
// programs except its scope (this activation): without a cost limit, state
// tracking or default variables, cel's Eval only runs the program against it.
func (a *activation) input() any {
	if a.frame == nil {
		f, err := interpreter.NewExecutionFrame(a)
		if err != nil {
			return a // let Eval make (and report on) a frame of its own
		}
		a.frame = f
	}
	return a.frame
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) clock() {
	if a.clockSet {
		return
	}
	a.clockSet = true
	loc := a.r.Loc
	if loc == nil {
		loc = time.UTC
	}
	t := a.r.At.In(loc)
	a.hour = int64(t.Hour())
	wd := int64(t.Weekday()) // Sunday = 0
	if wd == 0 {
		wd = 7
	}
	a.weekday = wd
}

// lazyMap implements the CEL map traits by delegating to a map built on
// first use; FindStringKey (which the interpreter tries first for `x.key`)
// answers the common case without building anything.
type lazyMap struct {
	full traits.Mapper
}

func (m *lazyMap) get(build func() map[string]any) traits.Mapper {
	if m.full == nil {
		m.full = types.NewStringInterfaceMap(types.DefaultTypeAdapter, build())
	}
	return m.full
}

type memberVal struct {
	lazyMap
	r *Request
}

// FindStringKey is the interpreter's fast path for `member.key`.
func (m *memberVal) FindStringKey(k string) (any, bool) {
	switch k {
	case "id":
		return m.r.MemberID, true
	case "login":
		return m.r.MemberLogin, true
	case "role":
		return m.r.Role, true
	case "team":
		return m.r.Team, true
	}
	return nil, false
}

func (m *memberVal) m() traits.Mapper {
	return m.get(func() map[string]any {
		return map[string]any{"id": m.r.MemberID, "login": m.r.MemberLogin, "role": m.r.Role, "team": m.r.Team}
	})
}

// The rest of ref.Val and traits.Mapper delegates to the full map.

func (m *memberVal) ConvertToNative(t reflect.Type) (any, error) { return m.m().ConvertToNative(t) }
func (m *memberVal) ConvertToType(t ref.Type) ref.Val            { return m.m().ConvertToType(t) }
func (m *memberVal) Equal(o ref.Val) ref.Val                     { return m.m().Equal(o) }
func (m *memberVal) Type() ref.Type                              { return types.MapType }
func (m *memberVal) Value() any                                  { return m.m().Value() }
func (m *memberVal) Contains(k ref.Val) ref.Val                  { return m.m().Contains(k) }
func (m *memberVal) Get(k ref.Val) ref.Val                       { return m.m().Get(k) }
func (m *memberVal) Iterator() traits.Iterator                   { return m.m().Iterator() }
func (m *memberVal) Size() ref.Val                               { return m.m().Size() }
func (m *memberVal) Find(k ref.Val) (ref.Val, bool)              { return m.m().Find(k) }

type customerVal struct {
	lazyMap
	r    *Request
	tags tagsVal
}

// FindStringKey is the interpreter's fast path for `customer.key`.
func (c *customerVal) FindStringKey(k string) (any, bool) {
	switch k {
	case "id":
		return c.r.CustomerID, true
	case "ref":
		return c.r.CustomerRef, true
	case "tags":
		return &c.tags, true
	case "new":
		return c.r.CustomerNew, true
	}
	return nil, false
}

func (c *customerVal) m() traits.Mapper {
	return c.get(func() map[string]any {
		return map[string]any{"id": c.r.CustomerID, "ref": c.r.CustomerRef, "tags": &c.tags, "new": c.r.CustomerNew}
	})
}

// The rest of ref.Val and traits.Mapper delegates to the full map.

func (c *customerVal) ConvertToNative(t reflect.Type) (any, error) { return c.m().ConvertToNative(t) }
func (c *customerVal) ConvertToType(t ref.Type) ref.Val            { return c.m().ConvertToType(t) }
func (c *customerVal) Equal(o ref.Val) ref.Val                     { return c.m().Equal(o) }
func (c *customerVal) Type() ref.Type                              { return types.MapType }
func (c *customerVal) Value() any                                  { return c.m().Value() }
func (c *customerVal) Contains(k ref.Val) ref.Val                  { return c.m().Contains(k) }
func (c *customerVal) Get(k ref.Val) ref.Val                       { return c.m().Get(k) }
func (c *customerVal) Iterator() traits.Iterator                   { return c.m().Iterator() }
func (c *customerVal) Size() ref.Val                               { return c.m().Size() }
func (c *customerVal) Find(k ref.Val) (ref.Val, bool)              { return c.m().Find(k) }

// tagsVal is customer.tags: `"vip" in customer.tags` and size() read the
// request's slice directly; anything else goes through a CEL list built on
// first use.
type tagsVal struct {
	tags []string
	full traits.Lister
}

func (t *tagsVal) list() traits.Lister {
	if t.full == nil {
		t.full = types.NewStringList(types.DefaultTypeAdapter, t.tags)
	}
	return t.full
}

func (t *tagsVal) Contains(v ref.Val) ref.Val {
	if s, ok := v.(types.String); ok {
		return types.Bool(slices.Contains(t.tags, string(s)))
	}
	return t.list().Contains(v)
}

// The rest of ref.Val and traits.Lister delegates to the full list.

func (t *tagsVal) Size() ref.Val                                { return types.Int(len(t.tags)) }
func (t *tagsVal) Type() ref.Type                               { return types.ListType }
func (t *tagsVal) ConvertToNative(rt reflect.Type) (any, error) { return t.list().ConvertToNative(rt) }
func (t *tagsVal) ConvertToType(tt ref.Type) ref.Val            { return t.list().ConvertToType(tt) }
func (t *tagsVal) Equal(o ref.Val) ref.Val                      { return t.list().Equal(o) }
func (t *tagsVal) Value() any                                   { return t.list().Value() }
func (t *tagsVal) Add(o ref.Val) ref.Val                        { return t.list().Add(o) }
func (t *tagsVal) Get(i ref.Val) ref.Val                        { return t.list().Get(i) }
func (t *tagsVal) Iterator() traits.Iterator                    { return t.list().Iterator() }
