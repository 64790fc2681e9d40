package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/webhook"
)

var deliveryStatuses = []string{margen.DeliveryPending, margen.DeliveryDelivered, margen.DeliveryFailed}

type webhookBody struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// validateWebhook is the one endpoint rule both doors use.
func validateWebhook(in *webhookBody) ([]string, error) {
	return webhook.ValidateEndpoint(in.URL, in.Events)
}

// createWebhook registers an endpoint; the answer is the only place its
// signing secret is ever shown.
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	var in webhookBody
	body, ok := s.readJSON(w, r, &in)
	if !ok {
		return
	}
	evs, err := validateWebhook(&in)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	hook := &margen.Webhook{
		ID:        margen.NewID("whk"),
		OrgID:     st.org.ID,
		URL:       in.URL,
		Events:    evs,
		Secret:    webhook.NewSecret(),
		Active:    true,
		CreatedAt: s.clock.Now(),
	}
	out, err := json.Marshal(hook)
	if err != nil {
		s.problem(w, r, fmt.Errorf("webhook: encode the answer: %w", err))
		return
	}
	// The stored answer for a retry leaves the secret out: it is shown
	// once, in this response, and nowhere else.
	shown := *hook
	shown.Secret = ""
	stored, err := json.Marshal(&shown)
	if err != nil {
		s.problem(w, r, fmt.Errorf("webhook: encode the stored answer: %w", err))
		return
	}
	err = s.store.CreateWebhook(r.Context(), hook, st.member.ID, ic.record(http.StatusCreated, stored))
	s.respond(w, r, ic, err, http.StatusCreated, out)
}

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	items, err := s.store.ListWebhooks(r.Context(), state(r).org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	for i := range items {
		items[i].Secret = "" // shown once, when created
	}
	writeJSON(w, http.StatusOK, list(items, ""))
}

func (s *server) getWebhook(w http.ResponseWriter, r *http.Request) {
	hook, err := s.store.GetWebhook(r.Context(), state(r).org.ID, r.PathValue("id"))
	if err != nil {
		s.problem(w, r, err)
		return
	}
	hook.Secret = ""
	writeJSON(w, http.StatusOK, hook)
}

// deleteWebhook deactivates an endpoint: nothing more is sent to it, and
// its deliveries stay visible.
func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	if err := s.store.DeleteWebhook(r.Context(), st.org.ID, r.PathValue("id"), st.member.ID); err != nil {
		s.problem(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	f := margen.DeliveryFilter{Page: fetch(p), WebhookID: r.PathValue("id"), Status: q.Get("status")}
	if f.Status != "" && !slices.Contains(deliveryStatuses, f.Status) {
		s.problem(w, r, margen.Invalid("status", "error.invalid_value", "field", "status", "allowed", deliveryStatuses))
		return
	}
	// A webhook of another organisation answers like a missing one.
	if _, err := s.store.GetWebhook(r.Context(), st.org.ID, f.WebhookID); err != nil {
		s.problem(w, r, err)
		return
	}
	items, err := s.store.ListDeliveries(r.Context(), st.org.ID, f)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(d margen.Delivery) string { return d.ID })
	writeJSON(w, http.StatusOK, list(items, next))
}

func (s *server) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := s.store.GetDelivery(r.Context(), state(r).org.ID, r.PathValue("id"))
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// replayDelivery queues a delivery again for an attempt now, whatever its
// status. Queuing twice is harmless (the receiver deduplicates by the
// webhook-id header, which stays the delivery id), so it takes no
// Idempotency-Key.
func (s *server) replayDelivery(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	d, err := s.store.ReplayDelivery(r.Context(), st.org.ID, r.PathValue("id"), st.member.ID, s.clock.Now())
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, d)
}
