package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/margenhq/margen"
)

func TestOutcomeOf(t *testing.T) {
	for _, d := range []margen.Decision{
		{Outcome: margen.OutcomeAllowed},
		{Outcome: margen.OutcomeDenied, Reason: `"outcome":"allowed"`},
		{Outcome: margen.OutcomeAllowed, Context: json.RawMessage(`{"outcome":"denied","x":{"outcome":"needs_approval"}}`)},
		{Outcome: margen.OutcomeNeedsApproval, Explanation: margen.Explanation{Code: "over_max", Args: map[string]any{"approver": "supervisor"}},
			Budgets: []margen.BudgetView{{Budget: "member_daily"}}},
	} {
		b, err := json.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		if got := outcomeOf(b); got != d.Outcome {
			t.Errorf("outcomeOf(%s) = %q, want %q", b, got, d.Outcome)
		}
	}
	if got := outcomeOf([]byte(`{"outcome" : "denied"}`)); got != margen.OutcomeDenied {
		t.Errorf("fallback: %q", got)
	}
	if got := outcomeOf([]byte(`not json`)); got != "" {
		t.Errorf("garbage: %q", got)
	}
}

func BenchmarkOutcomeOf(b *testing.B) {
	d := margen.Decision{ID: margen.NewID("dec"), Action: "cortesia", Amount: 4000000, Outcome: margen.OutcomeNeedsApproval,
		Context: json.RawMessage(`{"order_total":30000000}`), Budgets: make([]margen.BudgetView, 3),
		Explanation: margen.Explanation{Code: "over_max", Message: "Necesitas aprobación: 40.000,00 COP supera tu máximo de 25.000,00 COP."}}
	body, _ := json.Marshal(&d)
	for b.Loop() {
		if outcomeOf(body) != margen.OutcomeNeedsApproval {
			b.Fatal("wrong outcome")
		}
	}
}
