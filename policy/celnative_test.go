package policy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// nativeEdgeValues are what a context key may hold in the differential
// tests: the edges of int64 and float64, NaN, values of the wrong type for
// the operation, and kinds the native subset does not model.
var nativeEdgeValues = []any{
	int64(math.MaxInt64), int64(math.MinInt64), int64(0), int64(-1), 7, int64(3),
	0.0, -1.0, 1.5, -2.5, 4800000.0, math.NaN(), math.Inf(1), math.Inf(-1),
	9.223372036854775807e18, -9.223372036854775808e18, 1e300, 0.1,
	"efectivo", "", "vip", "a", "ñandú", "telefono",
	true, false, nil, []any{"vip", 1.0}, map[string]any{"k": "v"}, uint(3),
}

// nativeRequests are the inputs every generated expression runs against.
func nativeRequests() []*Request {
	bogota := time.FixedZone("COT", -5*3600)
	amounts := []int64{0, 700000, math.MaxInt64, math.MinInt64, -1, 3}
	tags := [][]string{nil, {"vip"}, {"frecuente", "empleado"}, {""}}
	keys := []string{"x", "y", "z", "order_total", "payment"}
	n := len(nativeEdgeValues)
	var out []*Request
	for j := range 2 * n {
		ctx := map[string]any{}
		for k, key := range keys {
			idx := (j*(2*k+1) + 3*k) % (n + 2)
			if idx >= n {
				continue // a missing key
			}
			ctx[key] = nativeEdgeValues[idx]
		}
		if j == 5 {
			ctx = nil
		}
		out = append(out, &Request{
			MemberID: "m-1", MemberLogin: "lucia", Role: "frontline", Team: []string{"", "restaurante"}[j%2],
			CustomerID: "c-9", CustomerRef: "ref", CustomerTags: tags[j%len(tags)], CustomerNew: j%3 == 0,
			Action: "courtesy_gift", Amount: amounts[j%len(amounts)], Context: ctx,
			At: time.Date(2026, 11, 25+j%7, j%24, 30, 0, 0, time.UTC), Loc: []*time.Location{nil, bogota}[j%2],
		})
	}
	return out
}

// compareNative compiles src (of any type) both ways and checks, on every
// request, that wherever the native closure answers, cel-go answers the
// same value without error. It returns how many evaluations the closure
// answered and how many it gave back to the interpreter; ok is false when
// src is not valid CEL or not in the subset.
func compareNative(t *testing.T, src string, reqs []*Request) (answered, gaveUp int, ok bool) {
	t.Helper()
	env, err := celEnv()
	if err != nil {
		t.Fatal(err)
	}
	if len(src) > MaxConditionLen {
		return 0, 0, false
	}
	checked, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return 0, 0, false
	}
	fn := compileNative(checked.NativeRep())
	if fn == nil {
		return 0, 0, false
	}
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return 0, 0, false
	}
	for _, r := range reqs {
		var a activation
		a.reset(r)
		got := fn(&a)
		a.reset(nil)
		a.reset(r)
		want, _, err := prg.Eval(&a)
		a.reset(nil)
		if got.k == kNone {
			gaveUp++
			continue
		}
		answered++
		if err != nil {
			t.Fatalf("%s with context %v amount %d: native %s, cel-go error %v", src, r.Context, r.Amount, got, err)
		}
		if !sameValue(got, want) {
			t.Fatalf("%s with context %v amount %d: native %s, cel-go %v (%T)", src, r.Context, r.Amount, got, want, want)
		}
	}
	return answered, gaveUp, true
}

func sameValue(v value, w ref.Val) bool {
	switch w := w.(type) {
	case types.Bool:
		return v.k == kBool && v.b == bool(w)
	case types.Int:
		return v.k == kInt && v.i == int64(w)
	case types.Double:
		return v.k == kDouble && (math.Float64bits(v.f) == math.Float64bits(float64(w)) ||
			math.IsNaN(v.f) && math.IsNaN(float64(w)))
	case types.String:
		return v.k == kString && v.s == string(w)
	}
	return false
}

func (v value) String() string {
	switch v.k {
	case kBool:
		return fmt.Sprintf("bool %v", v.b)
	case kInt:
		return fmt.Sprintf("int %d", v.i)
	case kDouble:
		return fmt.Sprintf("double %v", v.f)
	case kString:
		return fmt.Sprintf("string %q", v.s)
	}
	return "none"
}

// exprGen writes random CEL expressions over the policy variables.
type exprGen struct{ r *rand.Rand }

var (
	genAtoms = []string{
		"amount", "hour", "weekday", "action", "member.role", "member.team", "member.id", "member.login",
		"customer.new", "customer.id", "customer.ref",
		"context.x", "context.y", "context.z", "context.order_total", "context.payment", "context.missing",
		"0", "1", "-1", "2", "3", "30", "9223372036854775807", "-9223372036854775808", "1u",
		"0.0", "1.5", "-2.5", "1e308", "9.223372036854775807e18", "-9.223372036854775808e18",
		`"efectivo"`, `""`, `"vip"`, `"ñandú"`, "true", "false", "null",
	}
	genUnary  = []string{"!%s", "-%s", "int(%s)", "double(%s)", "size(%s)", "(%s)", "has(context.%s)"}
	genBinary = []string{
		"%s == %s", "%s != %s", "%s < %s", "%s <= %s", "%s > %s", "%s >= %s",
		"%s + %s", "%s - %s", "%s * %s", "%s / %s", "%s %% %s", "%s && %s", "%s || %s",
		"%s.startsWith(%s)", "%s.endsWith(%s)", "%s.contains(%s)",
	}
	genKeys = []string{"x", "y", "z", "order_total", "payment", "missing"}
)

func (g exprGen) expr(depth int) string {
	if depth <= 0 || g.r.IntN(4) == 0 {
		return genAtoms[g.r.IntN(len(genAtoms))]
	}
	switch g.r.IntN(8) {
	case 0, 1:
		u := genUnary[g.r.IntN(len(genUnary))]
		if strings.HasPrefix(u, "has(") {
			return fmt.Sprintf(u, genKeys[g.r.IntN(len(genKeys))])
		}
		return fmt.Sprintf(u, g.expr(depth-1))
	case 2:
		lists := []string{`["efectivo", "tarjeta"]`, `[]`, `["vip"]`, "customer.tags", `[1, 2.5]`}
		return fmt.Sprintf("%s in %s", g.expr(depth-1), lists[g.r.IntN(len(lists))])
	case 3:
		return fmt.Sprintf("(%s ? %s : %s)", g.expr(depth-1), g.expr(depth-1), g.expr(depth-1))
	}
	b := genBinary[g.r.IntN(len(genBinary))]
	return fmt.Sprintf(b, g.expr(depth-1), g.expr(depth-1))
}

// TestNativeMatchesCEL is the differential test: thousands of generated
// expressions, each run natively and by cel-go against requests holding
// edge values, must agree wherever the native closure answers; and it
// must answer a useful share of them.
func TestNativeMatchesCEL(t *testing.T) {
	reqs := nativeRequests()
	g := exprGen{r: rand.New(rand.NewPCG(7, 2026))}
	n := 6000
	if testing.Short() {
		n = 1000
	}
	var compiled, answered, gaveUp int
	for range n {
		src := g.expr(3)
		a, u, ok := compareNative(t, src, reqs)
		if ok {
			compiled++
			answered += a
			gaveUp += u
		}
	}
	t.Logf("%d expressions, %d compiled natively; %d evaluations answered, %d given back to cel-go", n, compiled, answered, gaveUp)
	if compiled < n/20 || answered < gaveUp/4 {
		t.Fatalf("the generator exercises too little of the subset: %d compiled, %d answered, %d given back", compiled, answered, gaveUp)
	}
}

// TestNativeConditions checks the conditions of the example policies and
// the documentation compile natively and agree with cel-go.
func TestNativeConditions(t *testing.T) {
	reqs := nativeRequests()
	reqs = append(reqs, &Request{
		CustomerTags: []string{"frecuente"}, Amount: 700000,
		Context: map[string]any{"order_total": 4800000.0, "payment": "tarjeta", "delay_minutes": 45.0, "channel": "chat"},
		At:      time.Date(2026, 11, 25, 13, 30, 0, 0, time.UTC),
	})
	for _, src := range nativeSeeds {
		answered, _, ok := compareNative(t, src, reqs)
		if !ok {
			t.Errorf("%s: not compiled natively", src)
		}
		if answered == 0 {
			t.Errorf("%s: never answered natively", src)
		}
	}
}

// nativeSeeds are the conditions of testdata/restaurant.yaml,
// demo/policy.yaml and docs/policy.md, and edge cases.
var nativeSeeds = []string{
	`amount * 2 <= int(context.order_total) * 3`,
	`has(context.order_total)`,
	`weekday <= 5`,
	`"vip" in customer.tags || customer.new`,
	`int(context.delay_minutes) >= 30`,
	`context.channel == "telefono"`,
	`hour >= 8 && hour < 22`,
	`context.payment == "efectivo"`,
	`"empleado" in customer.tags`,
	`has(context.item_category) && context.item_category == "licor"`,
	`"frecuente" in customer.tags || "vip" in customer.tags`,
	`hour >= 11 && hour < 23`,
	`has(context.channel) && context.channel in ["telefono", "chat", "whatsapp"]`,
	`has(context.delay_minutes) && int(context.delay_minutes) >= 30`,
	`has(context.order_total) && amount <= int(context.order_total) / 10`,
	`context.x > 100`,
	`context.x / context.y > 0.5`,
	`int(context.x) % 7 == 3 || int(context.y) - 1 < amount`,
	`-amount < 0 && double(amount) != context.x`,
	`(context.x == context.y) == !(context.x != context.y)`,
	`context.missing > 0 || true`,
	`false && context.missing > 0`,
	`size(context.payment) > 3 ? member.role == "frontline" : customer.new`,
	`size(customer.tags) >= 1 && customer.id == "c-9"`,
	`amount * 9223372036854775807 >= 0 && amount - 1 < 2`, // literal right operands, at the edges
	`context.x / 0.0 != 1.5 || context.order_total == 4800000`,
}

// FuzzNative compares the native closure with cel-go on any expression
// the fuzzer writes; `go test` runs the seeds.
func FuzzNative(f *testing.F) {
	for _, s := range nativeSeeds {
		f.Add(s)
	}
	g := exprGen{r: rand.New(rand.NewPCG(1, 7))}
	for range 50 {
		f.Add(g.expr(3))
	}
	reqs := nativeRequests()
	f.Fuzz(func(t *testing.T, src string) {
		compareNative(t, src, reqs)
	})
}

// TestNativeFallsBack checks Evaluate through a policy: a condition the
// closure gives up on (a missing key, an overflow) reports cel-go's error,
// word for word, as when the interpreter alone ran it.
func TestNativeFallsBack(t *testing.T) {
	comp, err := newCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src  string
		ctx  map[string]any
		want string
	}{
		{`int(context.order_total) * 3 >= amount`, map[string]any{}, "no such key: order_total"},
		{`int(context.order_total) * 3 >= amount`, map[string]any{"order_total": 1e300}, "integer overflow"},
		{`int(context.order_total) * 3 >= amount`, map[string]any{"order_total": 4e18}, "integer overflow"},
		{`amount / int(context.order_total) >= 1`, map[string]any{"order_total": 0.5}, "division by zero"},
		// cel-go's standard library: a NaN operand makes <, <=, > and >= false.
		{`context.order_total > 1 || context.order_total <= 1`, map[string]any{"order_total": math.NaN()}, ""},
		{`context.order_total > 1`, map[string]any{"order_total": "mucho"}, "no such overload"},
		{`context.order_total > 1`, map[string]any{"order_total": 2.0}, ""},
	} {
		prg, msg, _ := comp.compile(tc.src)
		if prg == nil {
			t.Fatalf("%s: %s", tc.src, msg)
		}
		if prg.native == nil {
			t.Fatalf("%s: not compiled natively", tc.src)
		}
		r := &Request{Amount: 10, Context: tc.ctx, At: time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)}
		var a activation
		a.reset(r)
		got, gotMsg := prg.eval(&a)
		a.reset(nil)
		a.reset(r)
		want, wantMsg := prg.interpret(&a)
		a.reset(nil)
		if got != want || gotMsg != wantMsg {
			t.Errorf("%s on %v: native path (%v, %q), interpreter (%v, %q)", tc.src, tc.ctx, got, gotMsg, want, wantMsg)
		}
		if !strings.Contains(gotMsg, tc.want) || (tc.want == "") != (gotMsg == "") {
			t.Errorf("%s on %v: message %q, want %q", tc.src, tc.ctx, gotMsg, tc.want)
		}
	}
}

// TestNativeTrackedStaysInterpreted: a condition with a runtime cost limit
// is never compiled natively, so the interpreter's cost tracker bounds it.
func TestNativeTrackedStaysInterpreted(t *testing.T) {
	comp, err := newCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		`context.items.all(i, i > 0)`,
		`context.note.contains("roto")`,
	} {
		prg, msg, _ := comp.compile(src)
		if prg == nil {
			t.Fatalf("%s: %s", src, msg)
		}
		if !prg.tracked || prg.native != nil {
			t.Errorf("%s: tracked %v, native %v", src, prg.tracked, prg.native != nil)
		}
	}
	prg, _, _ := comp.compile(`amount * 2 <= int(context.order_total) * 3`)
	if prg.tracked || prg.native == nil {
		t.Errorf("the relative condition: tracked %v, native %v", prg.tracked, prg.native != nil)
	}
}

// TestNativeMultiplyBy checks x * c for int literals c at the edges of
// overflow, where nativeMultiplyBy's precomputed bounds decide between
// multiplying and asking arith (which gives the overflow back to cel-go).
func TestNativeMultiplyBy(t *testing.T) {
	for _, c := range []int64{1, 2, 3, 7, 30, 1 << 32, math.MaxInt64} {
		lo, hi := math.MinInt64/c, math.MaxInt64/c
		var reqs []*Request
		for _, x := range []int64{lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0, 1, -1, math.MinInt64, math.MaxInt64} {
			reqs = append(reqs, &Request{Amount: x, At: time.Date(2026, 11, 25, 13, 30, 0, 0, time.UTC)})
		}
		src := fmt.Sprintf("amount * %d", c)
		answered, gaveUp, ok := compareNative(t, src, reqs)
		if !ok || answered == 0 || (c > 1 && gaveUp == 0) {
			t.Errorf("%s: compiled %v, %d answered, %d given back", src, ok, answered, gaveUp)
		}
	}
}
