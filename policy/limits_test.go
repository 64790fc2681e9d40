package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// hostile documents, shared with FuzzParse's seeds.
func flowNest(depth int) string {
	return "currency: " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n"
}

func blockNest(depth int) string {
	var b strings.Builder
	for i := range depth {
		fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", i), i)
	}
	return b.String()
}

// withGrants returns basePolicy with extra grants appended to its grants
// list (which precedes the forbid list).
func withGrants(n int, grant func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(grant(i))
	}
	return strings.Replace(basePolicy, "forbid:\n", b.String()+"forbid:\n", 1)
}

func TestParseLimits(t *testing.T) {
	longCond := "amount >= 0 && '" + strings.Repeat("x", MaxConditionLen-30) + "' != ''"
	tests := []struct {
		name  string
		src   string
		limit string
		max   int
		path  string
	}{
		{"size", basePolicy + "# " + strings.Repeat("x", MaxPolicySize) + "\n", LimitSize, MaxPolicySize, ""},
		{"nodes in a flow list", "currency: COP\nx: [" + strings.Repeat("a,", MaxPolicyNodes) + "]\n", LimitNodes, MaxPolicyNodes, ""},
		{"nodes in comments", basePolicy + strings.Repeat("#\n", MaxPolicyNodes/2+1), LimitNodes, MaxPolicyNodes, ""},
		{"flow depth", flowNest(MaxPolicyDepth + 1), LimitDepth, MaxPolicyDepth, ""},
		{"flow mapping depth", "currency: " + strings.Repeat("{a: ", MaxPolicyDepth) + "b" + strings.Repeat("}", MaxPolicyDepth) + "\n", LimitDepth, MaxPolicyDepth, ""},
		{"block mapping depth", blockNest(MaxPolicyDepth + 1), LimitDepth, MaxPolicyDepth, ""},
		{"block sequence depth", "currency:\n" + strings.Repeat("- ", MaxPolicyDepth+1) + "x\n", LimitDepth, MaxPolicyDepth, ""},
		{"block and flow depth", blockNest(MaxPolicyDepth/2) + strings.Repeat(" ", MaxPolicyDepth/2) + "z: " + flowNest(MaxPolicyDepth/2 + 1)[len("currency: "):], LimitDepth, MaxPolicyDepth, ""},
		{"scalar", replace(t, "{es: Regalo, en: Gift}", "{es: Regalo, en: "+strings.Repeat("g", MaxScalarLen+1)+"}"), LimitScalar, MaxScalarLen, ""},
		{"quoted scalar", replace(t, "{es: Regalo, en: Gift}", `{es: Regalo, en: "`+strings.Repeat("g", MaxScalarLen+1)+`"}`), LimitScalar, MaxScalarLen, ""},
		{"alias", strings.Replace(replace(t, "inherits: [staff]", "inherits: [*s]"), "  - id: staff\n", "  - id: &s staff\n", 1), LimitAlias, 0, "roles[1].inherits[0]"},
		{"actions", replace(t, "actions:\n", "actions:\n"+strings.Repeat("  - {id: a, label: {es: a, en: a}}\n", MaxActions+1)), LimitEntries, MaxActions, "actions"},
		{"grants", withGrants(MaxGrants+1, func(i int) string {
			return fmt.Sprintf("  - {id: g%d, role: staff, actions: [waive]}\n", i)
		}), LimitEntries, MaxGrants, "grants"},
		{"list in a grant", withGrants(1, func(int) string {
			return "  - {id: many, role: staff, actions: [" + strings.Repeat("waive,", MaxListLen) + "waive]}\n"
		}), LimitList, MaxListLen, "grants[2].actions"},
		{"teams in a grant", withGrants(1, func(int) string {
			return "  - {id: many, role: staff, actions: [waive], teams: [" + strings.Repeat("t,", MaxListLen) + "t]}\n"
		}), LimitList, MaxListLen, "grants[2].teams"},
		{"condition length", replace(t, "'amount < 500'", "'"+strings.Repeat("amount < 500 && ", MaxConditionLen/16)+"true'"), LimitCondition, MaxConditionLen, "grants[0].when"},
		{"condition depth", replace(t, "'amount < 500'", "'"+strings.Repeat("(", MaxConditionDepth+1)+"amount < 500"+strings.Repeat(")", MaxConditionDepth+1)+"'"), LimitConditionDepth, MaxConditionDepth, "grants[0].when"},
		{"conditions together", withGrants(MaxConditionsSize/len(longCond)+1, func(i int) string {
			return fmt.Sprintf("  - {id: c%d, role: staff, actions: [waive], when: \"%s\"}\n", i, longCond)
		}), LimitConditionsSize, MaxConditionsSize, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := parseErrors(t, tt.src)
			var found *Error
			for i := range es {
				if es[i].Limit != "" {
					found = &es[i]
					break
				}
			}
			if found == nil {
				t.Fatalf("no limit named in %d errors; first: %v", len(es), es[0])
			}
			if found.Limit != tt.limit || found.Max != tt.max {
				t.Fatalf("limit %q max %d, want %q max %d: %v", found.Limit, found.Max, tt.limit, tt.max, found)
			}
			if tt.path != "" && !strings.HasPrefix(found.Path, tt.path) {
				t.Errorf("path %q, want %q", found.Path, tt.path)
			}
			if found.Line == 0 && tt.limit != LimitConditionsSize {
				t.Errorf("no position: %+v", found)
			}
		})
	}
}

// TestParseLimitsAtTheEdge: a document at each limit still parses, so the
// limits do not refuse more than they say.
func TestParseLimitsAtTheEdge(t *testing.T) {
	mustParseFile(t, "testdata/restaurant.yaml")
	teams := make([]string, MaxListLen)
	for i := range teams {
		teams[i] = fmt.Sprintf("t%d", i)
	}
	mustParse(t, withGrants(1, func(int) string {
		return "  - {id: many, role: staff, actions: [waive], teams: [" + strings.Join(teams, ", ") + "]}\n"
	}))
	mustParse(t, replace(t, "'amount < 500'", "'"+strings.Repeat("(", MaxConditionDepth-2)+"amount < 500"+strings.Repeat(")", MaxConditionDepth-2)+"'"))
	// Nesting up to the limit is the YAML's business: this one is refused
	// for its meaning (a label must hold texts), not its depth.
	es := parseErrors(t, replace(t, "{es: Regalo, en: Gift}", "{es: Regalo, en: "+strings.Repeat("[", MaxPolicyDepth-4)+strings.Repeat("]", MaxPolicyDepth-4)+"}"))
	for _, e := range es {
		if e.Limit != "" {
			t.Fatalf("refused at depth %d: %v", MaxPolicyDepth-1, e)
		}
	}
}

// TestParseDeepNestingIsCheap: the YAML parser's memory grows with the
// square of the nesting depth (4,000 brackets cost it about 28 MB, 50,000
// would cost gigabytes). The pre-scan refuses such a document before the
// parser sees it, so its cost is that of a linear scan. The document here
// is small enough that the test stays cheap even without the bound, and the
// difference is still plain.
func TestParseDeepNestingIsCheap(t *testing.T) {
	for _, src := range []string{flowNest(4000), "currency:\n" + strings.Repeat("- ", 4000) + "x\n"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		es := parseErrors(t, src)
		runtime.ReadMemStats(&after)
		if es[0].Limit != LimitDepth {
			t.Errorf("got %v, want the depth limit", es[0])
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("parsing a %d-byte document allocated %d MB", len(src), alloc>>20)
		}
	}
}

// TestParseAliasesAreNotExpanded: a "billion laughs" document is refused
// quickly, each alias reported, nothing expanded.
func TestParseAliasesAreNotExpanded(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 20; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	es := parseErrors(t, b.String())
	if len(es) > MaxErrors {
		t.Fatalf("%d errors, at most %d expected", len(es), MaxErrors)
	}
}

func TestParseErrorsAreCapped(t *testing.T) {
	es := parseErrors(t, withGrants(2*MaxErrors, func(i int) string {
		return fmt.Sprintf("  - {id: e%d, role: nobody, actions: [waive]}\n", i)
	}))
	if len(es) != MaxErrors {
		t.Fatalf("%d errors, want %d", len(es), MaxErrors)
	}
	if last := es[len(es)-1]; !strings.Contains(last.Msg, "more problems") {
		t.Fatalf("last error %v, want a summary", last)
	}
}

// TestParseInvalidRunsAreCheap: the YAML library's own tokenizer starts
// over after each invalid character, and reads a run of '%' as one
// directive at a cost that grows with the square of its length; 256 KB of
// either cost it tens of megabytes and seconds for 1 MB. Parse stops at the
// first invalid token and counts '%' among the elements.
func TestParseInvalidRunsAreCheap(t *testing.T) {
	for name, src := range map[string]string{
		"reserved characters": strings.Repeat("@`", 128<<10),
		"percent run":         "currency: " + strings.Repeat("%", 128<<10),
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		parseErrors(t, src)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: parsing %d KB allocated %d MB", name, len(src)>>10, alloc>>20)
		}
	}
}
