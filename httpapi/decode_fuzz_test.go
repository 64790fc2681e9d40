package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/margenhq/margen/decision"
)

func FuzzDecodeDecision(f *testing.F) {
	for _, s := range []string{
		`{"action":"courtesy_gift","amount":1500000,"customer":{"ref":"mesa-4"},"reason":"x","context":{"order_total":3000000}}`,
		`{"action":"a","customer":{"ref":"r","tags":["vip"]},"amount":null,"context":null}`,
		`{"action":"a","amount":-0,"customer":{"ref":"r"}}`,
		`{"action":"a","amount":1e3}`, `{"amount":"5"}`, `[]`, `null`, `{}`, `{"action":"a"}{}`,
		`{"action":"a","amount":99999999999999999999,"customer":{"ref":"r"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := decodeDecision(body)
		if err != nil {
			return
		}
		if in.Action == "" || in.Customer.Ref == "" {
			t.Fatalf("accepted without action or customer: %q", body)
		}
		if in.Amount < 0 || in.Amount > decision.MaxAmount {
			t.Fatalf("accepted amount %d: %q", in.Amount, body)
		}
		if len(in.Context) > 0 {
			var m map[string]any
			if json.Unmarshal(in.Context, &m) != nil || m == nil {
				t.Fatalf("accepted context %q", in.Context)
			}
		}
	})
}
