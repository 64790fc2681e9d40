package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/margenhq/margen/store/storetest"
)

// TestPolicyLoadErrorsAreNotSwallowed: when the active policy cannot be
// loaded (its stored source no longer parses), recording a refusal for an
// action fails instead of skipping the action check, and the explanation of
// a decision is logged as rendered without labels.
func TestPolicyLoadErrorsAreNotSwallowed(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			var logs syncBuffer
			e := setupLog(t, eng.Open(t), slog.New(slog.NewTextHandler(&logs, nil)))
			d, _ := e.decide("ana", gift(500000, "mesa-1"))

			// A refusal is checked against the policy's actions.
			e.do("POST", "/api/v1/refusals", "ana", `{"wanted":"x","reason":"not_allowed","customer_left":"unhappy","action":"nope"}`).
				want(http.StatusBadRequest)

			// Publishing drops the cached policy; then the stored source
			// is damaged before anything loads it again.
			e.do("POST", "/api/v1/policies", "olga", string(restaurantPolicy(t)), "Content-Type", "application/yaml").want(http.StatusCreated)
			if _, err := e.db.SQL().ExecContext(context.Background(),
				e.db.Rebind("UPDATE policy_versions SET source = ? WHERE org_id = ?"), "currency: [", e.orgA.ID); err != nil {
				t.Fatal(err)
			}
			e.do("POST", "/api/v1/refusals", "ana", `{"wanted":"x","reason":"not_allowed","customer_left":"unhappy","action":"courtesy_gift"}`).
				want(http.StatusInternalServerError)
			e.do("GET", "/api/v1/decisions/"+d.ID, "ana", "").want(http.StatusOK)
			if !strings.Contains(logs.String(), "cannot load the policy") || !strings.Contains(logs.String(), d.ID) {
				t.Errorf("log does not say the explanation lost its labels:\n%s", logs.String())
			}
		})
	}
}
