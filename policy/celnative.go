package policy

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
)

// This file evaluates the simple conditions policies are made of without the
// CEL interpreter: the checked AST of a condition is compiled into Go
// closures over the request, for a subset of CEL (comparisons, &&, ||, !,
// ?:, int and double arithmetic, int() and double(), `in` a list of string
// literals or customer.tags, has() and field access on context, member and
// customer, size() and the string tests startsWith, endsWith and contains).
//
// The closures give up instead of failing: wherever cel-go would return an
// error (a missing context key, an overflow, a division by zero, an
// operand of a type without that overload) or where a value is
// of a kind the subset does not model (null, lists and maps in the context,
// uint), a closure returns kNone and the condition is run again by the
// interpreter, which gives the answer and the error message CEL gives.
// Conditions are pure, so running one twice changes nothing. So the
// subset need only be exact where it answers, which the differential test
// and FuzzNative check against cel-go; a condition outside the subset
// is not compiled and always runs in the interpreter.
//
// Bounded cost: the subset has no comprehensions, macros other than has(),
// or calls that loop over their input except the string functions, and
// each node runs at most once per evaluation, so a compiled condition does
// work proportional to its own size (at most MaxConditionLen code points)
// plus one pass over the strings it tests. Conditions whose estimated cost
// is unbounded (string functions over context values of unknown size) carry
// a runtime cost limit and are never compiled: they keep the interpreter
// and its cost tracker.

// vkind is the type of a native value; kNone means "ask the interpreter".
type vkind uint8

const (
	kNone vkind = iota
	kBool
	kInt
	kDouble
	kString
)

// value is a CEL value of one of the kinds the subset models.
type value struct {
	k vkind
	b bool
	i int64
	f float64
	s string
}

// native is one compiled node.
type native func(a *activation) value

var none = value{}

// compileNative compiles a checked condition, or returns nil when it uses
// anything outside the subset.
func compileNative(a *celast.AST) native {
	if a == nil || !a.IsChecked() {
		return nil
	}
	return nativeExpr(a.Expr())
}

func nativeExpr(e celast.Expr) native {
	switch e.Kind() {
	case celast.LiteralKind:
		v, ok := literal(e.AsLiteral())
		if !ok {
			return nil
		}
		return func(*activation) value { return v }
	case celast.IdentKind:
		return nativeIdent(e.AsIdent())
	case celast.SelectKind:
		return nativeSelect(e.AsSelect())
	case celast.CallKind:
		return nativeCall(e.AsCall())
	}
	return nil
}

func literal(v any) (value, bool) {
	switch v := v.(type) {
	case types.Bool:
		return value{k: kBool, b: bool(v)}, true
	case types.Int:
		return value{k: kInt, i: int64(v)}, true
	case types.Double:
		return value{k: kDouble, f: float64(v)}, true
	case types.String:
		return value{k: kString, s: string(v)}, true
	}
	return none, false
}

func nativeIdent(name string) native {
	switch name {
	case "amount":
		return func(a *activation) value { return value{k: kInt, i: a.r.Amount} }
	case "action":
		return func(a *activation) value { return value{k: kString, s: a.r.Action} }
	case "hour":
		return func(a *activation) value { a.clock(); return value{k: kInt, i: a.hour} }
	case "weekday":
		return func(a *activation) value { a.clock(); return value{k: kInt, i: a.weekday} }
	}
	return nil
}

// contextValue converts what a context key holds as CEL's default type
// adapter would, for the kinds the subset models.
func contextValue(v any) value {
	switch v := v.(type) {
	case float64:
		return value{k: kDouble, f: v}
	case string:
		return value{k: kString, s: v}
	case bool:
		return value{k: kBool, b: v}
	case int64:
		return value{k: kInt, i: v}
	case int:
		return value{k: kInt, i: int64(v)}
	}
	return none
}

func nativeSelect(s celast.SelectExpr) native {
	op := s.Operand()
	if op.Kind() != celast.IdentKind {
		return nil
	}
	field := s.FieldName()
	switch op.AsIdent() {
	case "context":
		if s.IsTestOnly() {
			return func(a *activation) value {
				_, ok := a.r.Context[field]
				return value{k: kBool, b: ok}
			}
		}
		return func(a *activation) value {
			v, ok := a.r.Context[field]
			if !ok {
				return none // no such key
			}
			return contextValue(v)
		}
	case "member":
		if s.IsTestOnly() {
			return nil
		}
		switch field {
		case "id":
			return func(a *activation) value { return value{k: kString, s: a.r.MemberID} }
		case "login":
			return func(a *activation) value { return value{k: kString, s: a.r.MemberLogin} }
		case "role":
			return func(a *activation) value { return value{k: kString, s: a.r.Role} }
		case "team":
			return func(a *activation) value { return value{k: kString, s: a.r.Team} }
		}
	case "customer":
		if s.IsTestOnly() {
			return nil
		}
		switch field {
		case "id":
			return func(a *activation) value { return value{k: kString, s: a.r.CustomerID} }
		case "ref":
			return func(a *activation) value { return value{k: kString, s: a.r.CustomerRef} }
		case "new":
			return func(a *activation) value { return value{k: kBool, b: a.r.CustomerNew} }
		}
	}
	return nil
}

// isTags reports whether e is customer.tags.
func isTags(e celast.Expr) bool {
	if e.Kind() != celast.SelectKind {
		return false
	}
	s := e.AsSelect()
	return !s.IsTestOnly() && s.FieldName() == "tags" &&
		s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == "customer"
}

func nativeCall(c celast.CallExpr) native {
	fn := c.FunctionName()
	if c.IsMemberFunction() {
		switch fn {
		case overloads.StartsWith, overloads.EndsWith, overloads.Contains:
			if len(c.Args()) != 1 {
				return nil
			}
			return nativeStringTest(fn, c.Target(), c.Args()[0])
		}
		return nil
	}
	args := c.Args()
	switch fn {
	case operators.LogicalAnd, operators.LogicalOr:
		return nativeLogical(fn == operators.LogicalAnd, args)
	case operators.Conditional:
		return nativeConditional(args)
	case operators.In:
		return nativeIn(args)
	case overloads.Size:
		if len(args) != 1 {
			return nil
		}
		return nativeSize(args[0])
	}
	compiled := make([]native, len(args))
	for i, arg := range args {
		if compiled[i] = nativeExpr(arg); compiled[i] == nil {
			return nil
		}
	}
	if len(compiled) == 1 {
		x := compiled[0]
		switch fn {
		case operators.LogicalNot:
			return func(a *activation) value {
				v := x(a)
				if v.k != kBool {
					return none
				}
				return value{k: kBool, b: !v.b}
			}
		case operators.Negate:
			return func(a *activation) value { return negate(x(a)) }
		case overloads.TypeConvertInt:
			return func(a *activation) value { return toInt(x(a)) }
		case overloads.TypeConvertDouble:
			return func(a *activation) value { return toDouble(x(a)) }
		}
		return nil
	}
	if len(compiled) != 2 {
		return nil
	}
	x, y := compiled[0], compiled[1]
	if args[1].Kind() == celast.LiteralKind {
		// A literal right operand (`amount * 2`, `== "licor"`), the
		// usual case, is captured rather than called for.
		yv, _ := literal(args[1].AsLiteral())
		switch fn {
		case operators.Equals:
			return func(a *activation) value { return equal(x(a), yv, false) }
		case operators.NotEquals:
			return func(a *activation) value { return equal(x(a), yv, true) }
		}
		if op, ok := binaryOp(fn); ok {
			if op <= opGreaterEquals {
				return func(a *activation) value { return order(op, x(a), yv) }
			}
			if op == opMultiply && yv.k == kInt && yv.i > 0 {
				return nativeMultiplyBy(x, yv)
			}
			return func(a *activation) value { return arith(op, x(a), yv) }
		}
		return nil
	}
	switch fn {
	case operators.Equals:
		return func(a *activation) value { return equal(x(a), y(a), false) }
	case operators.NotEquals:
		return func(a *activation) value { return equal(x(a), y(a), true) }
	}
	if op, ok := binaryOp(fn); ok {
		if op <= opGreaterEquals {
			return func(a *activation) value { return order(op, x(a), y(a)) }
		}
		return func(a *activation) value { return arith(op, x(a), y(a)) }
	}
	return nil
}

// binop is an ordering or arithmetic operator, resolved when the condition
// is compiled rather than compared by name on every evaluation.
type binop uint8

const (
	opLess binop = iota
	opLessEquals
	opGreater
	opGreaterEquals
	opAdd
	opSubtract
	opMultiply
	opDivide
	opModulo
)

func binaryOp(fn string) (binop, bool) {
	switch fn {
	case operators.Less:
		return opLess, true
	case operators.LessEquals:
		return opLessEquals, true
	case operators.Greater:
		return opGreater, true
	case operators.GreaterEquals:
		return opGreaterEquals, true
	case operators.Add:
		return opAdd, true
	case operators.Subtract:
		return opSubtract, true
	case operators.Multiply:
		return opMultiply, true
	case operators.Divide:
		return opDivide, true
	case operators.Modulo:
		return opModulo, true
	}
	return 0, false
}

// nativeMultiplyBy is x * c for an int literal c > 0 (`amount * 2`). The
// ints whose product with c fits in an int64 are known in advance, so the
// usual case needs none of arith's divisions to rule out an overflow;
// anything else goes through arith.
func nativeMultiplyBy(x native, c value) native {
	lo, hi := math.MinInt64/c.i, math.MaxInt64/c.i // Go's division rounds toward 0
	return func(a *activation) value {
		v := x(a)
		if v.k == kInt && lo <= v.i && v.i <= hi {
			return value{k: kInt, i: v.i * c.i}
		}
		return arith(opMultiply, v, c)
	}
}

// nativeLogical is CEL's && and ||: false (true) from any operand decides,
// whatever the others are, even errors; otherwise an operand that is not a
// bool makes the result an error.
func nativeLogical(and bool, args []celast.Expr) native {
	terms := make([]native, len(args))
	for i, arg := range args {
		if terms[i] = nativeExpr(arg); terms[i] == nil {
			return nil
		}
	}
	return func(a *activation) value {
		failed := false
		for _, t := range terms {
			v := t(a)
			if v.k != kBool {
				failed = true
				continue
			}
			if v.b != and {
				return v
			}
		}
		if failed {
			return none
		}
		return value{k: kBool, b: and}
	}
}

func nativeConditional(args []celast.Expr) native {
	if len(args) != 3 {
		return nil
	}
	c, x, y := nativeExpr(args[0]), nativeExpr(args[1]), nativeExpr(args[2])
	if c == nil || x == nil || y == nil {
		return nil
	}
	return func(a *activation) value {
		switch v := c(a); {
		case v.k != kBool:
			return none
		case v.b:
			return x(a)
		default:
			return y(a)
		}
	}
}

// nativeIn is `x in ["a", "b"]` (string literals only) and
// `x in customer.tags`. An int, double or bool is in neither (CEL's list
// equality is false across those types); anything else asks the
// interpreter.
func nativeIn(args []celast.Expr) native {
	if len(args) != 2 {
		return nil
	}
	x := nativeExpr(args[0])
	if x == nil {
		return nil
	}
	if isTags(args[1]) {
		return func(a *activation) value {
			v := x(a)
			switch v.k {
			case kString:
				return value{k: kBool, b: slices.Contains(a.r.CustomerTags, v.s)}
			case kInt, kDouble, kBool:
				return value{k: kBool}
			}
			return none
		}
	}
	if args[1].Kind() != celast.ListKind {
		return nil
	}
	l := args[1].AsList()
	if len(l.OptionalIndices()) > 0 {
		return nil
	}
	var set []string
	for _, e := range l.Elements() {
		if e.Kind() != celast.LiteralKind {
			return nil
		}
		s, ok := e.AsLiteral().(types.String)
		if !ok {
			return nil
		}
		set = append(set, string(s))
	}
	return func(a *activation) value {
		v := x(a)
		switch v.k {
		case kString:
			return value{k: kBool, b: slices.Contains(set, v.s)}
		case kInt, kDouble, kBool:
			return value{k: kBool}
		}
		return none
	}
}

// nativeSize is size() of a string (in code points) or of customer.tags.
func nativeSize(arg celast.Expr) native {
	if isTags(arg) {
		return func(a *activation) value { return value{k: kInt, i: int64(len(a.r.CustomerTags))} }
	}
	x := nativeExpr(arg)
	if x == nil {
		return nil
	}
	return func(a *activation) value {
		v := x(a)
		if v.k != kString {
			return none
		}
		return value{k: kInt, i: int64(utf8.RuneCountInString(v.s))}
	}
}

func nativeStringTest(fn string, target, arg celast.Expr) native {
	x, y := nativeExpr(target), nativeExpr(arg)
	if x == nil || y == nil {
		return nil
	}
	var test func(s, t string) bool
	switch fn {
	case overloads.StartsWith:
		test = strings.HasPrefix
	case overloads.EndsWith:
		test = strings.HasSuffix
	default:
		test = strings.Contains
	}
	return func(a *activation) value {
		s, t := x(a), y(a)
		if s.k != kString || t.k != kString {
			return none
		}
		return value{k: kBool, b: test(s.s, t.s)}
	}
}

// equal is CEL's heterogeneous equality (types.Equal) over the subset's
// kinds: numbers compare by value across int and double, NaN equals
// nothing, and values of different kinds are unequal.
func equal(x, y value, negate bool) value {
	if x.k == kNone || y.k == kNone {
		return none
	}
	var eq bool
	switch {
	case x.k == kInt && y.k == kInt:
		eq = x.i == y.i
	case x.k == kDouble && y.k == kDouble:
		eq = x.f == y.f // false for NaN
	case x.k == kInt && y.k == kDouble:
		eq = !math.IsNaN(y.f) && compareDoubleInt(y.f, x.i) == 0
	case x.k == kDouble && y.k == kInt:
		eq = !math.IsNaN(x.f) && compareDoubleInt(x.f, y.i) == 0
	case x.k != y.k:
		eq = false
	case x.k == kString:
		eq = x.s == y.s
	case x.k == kBool:
		eq = x.b == y.b
	}
	return value{k: kBool, b: eq != negate}
}

// compareDoubleInt is cel-go's: a double beyond int64's range is beyond
// every int; otherwise the int is compared as a double (neither is a NaN:
// order returns before).
func compareDoubleInt(d float64, i int64) int {
	switch {
	case d < math.MinInt64:
		return -1
	case d > math.MaxInt64:
		return 1
	}
	return cmp.Compare(d, float64(i))
}

// order is CEL's <, <=, >, >= (with cross-type numeric comparisons, as the
// environment enables them). As in cel-go's standard library, an operand
// that is a NaN makes the comparison false, whatever the other operand
// is (unless it is an error).
func order(op binop, x, y value) value {
	if x.k == kNone || y.k == kNone {
		return none
	}
	if (x.k == kDouble && math.IsNaN(x.f)) || (y.k == kDouble && math.IsNaN(y.f)) {
		return value{k: kBool}
	}
	var c int
	switch {
	case x.k == kInt && y.k == kInt:
		c = cmp.Compare(x.i, y.i)
	case x.k == kDouble && y.k == kDouble:
		c = cmp.Compare(x.f, y.f)
	case x.k == kInt && y.k == kDouble:
		c = -compareDoubleInt(y.f, x.i)
	case x.k == kDouble && y.k == kInt:
		c = compareDoubleInt(x.f, y.i)
	case x.k == kString && y.k == kString:
		c = strings.Compare(x.s, y.s)
	case x.k == kBool && y.k == kBool:
		switch {
		case x.b == y.b:
		case y.b:
			c = -1
		default:
			c = 1
		}
	default:
		return none
	}
	var holds bool
	switch op {
	case opLess:
		holds = c < 0
	case opLessEquals:
		holds = c <= 0
	case opGreater:
		holds = c > 0
	default:
		holds = c >= 0
	}
	return value{k: kBool, b: holds}
}

// arith is CEL's +, -, *, / and % on two ints (checked: overflow and
// division by zero are errors) or two doubles (IEEE 754; no %). Mixed
// operands have no overload.
func arith(op binop, x, y value) value {
	switch {
	case x.k == kInt && y.k == kInt:
		a, b := x.i, y.i
		var r int64
		switch op {
		case opAdd:
			if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
				return none
			}
			r = a + b
		case opSubtract:
			if (b < 0 && a > math.MaxInt64+b) || (b > 0 && a < math.MinInt64+b) {
				return none
			}
			r = a - b
		case opMultiply:
			if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) ||
				(a > 0 && b > 0 && a > math.MaxInt64/b) ||
				(a > 0 && b < 0 && b < math.MinInt64/a) ||
				(a < 0 && b > 0 && a < math.MinInt64/b) ||
				(a < 0 && b < 0 && b < math.MaxInt64/a) {
				return none
			}
			r = a * b
		case opDivide:
			if b == 0 || (a == math.MinInt64 && b == -1) {
				return none
			}
			r = a / b
		case opModulo:
			if b == 0 || (a == math.MinInt64 && b == -1) {
				return none
			}
			r = a % b
		}
		return value{k: kInt, i: r}
	case x.k == kDouble && y.k == kDouble:
		a, b := x.f, y.f
		var r float64
		switch op {
		case opAdd:
			r = a + b
		case opSubtract:
			r = a - b
		case opMultiply:
			r = a * b
		case opDivide:
			r = a / b
		default:
			return none
		}
		return value{k: kDouble, f: r}
	}
	return none
}

func negate(x value) value {
	switch x.k {
	case kInt:
		if x.i == math.MinInt64 {
			return none
		}
		return value{k: kInt, i: -x.i}
	case kDouble:
		return value{k: kDouble, f: -x.f}
	}
	return none
}

// toInt is int(): an int unchanged, a double truncated when it is strictly
// inside int64's range (cel-go's doubleToInt64Checked).
func toInt(x value) value {
	switch x.k {
	case kInt:
		return x
	case kDouble:
		f := x.f
		if math.IsInf(f, 0) || math.IsNaN(f) || f <= math.MinInt64 || f >= math.MaxInt64 {
			return none
		}
		return value{k: kInt, i: int64(f)}
	}
	return none
}

// toDouble is double() of an int or a double.
func toDouble(x value) value {
	switch x.k {
	case kInt:
		return value{k: kDouble, f: float64(x.i)}
	case kDouble:
		return x
	}
	return none
}
