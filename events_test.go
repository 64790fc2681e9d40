package margen_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// entry is an audit entry with data marshalled from v.
func entry(action margen.AuditAction, actor, subject string, v any) *margen.AuditEntry {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return &margen.AuditEntry{OrgID: "org_1", Seq: 42, At: time.Date(2026, 11, 25, 19, 18, 25, 273694000, time.UTC),
		Actor: actor, Action: action, Subject: subject, Data: b}
}

func TestEventsOf(t *testing.T) {
	needs := margen.EventData{Outcome: margen.OutcomeNeedsApproval, Action: "cortesia", Amount: 4000, Customer: "cus_1",
		Rule: "cortesia_mesa", Version: 3, Member: "mem_ana", Team: "sala", DecisionID: "dec_1", ApprovalID: "apr_1",
		ApproverRole: "supervisor", DueAt: "2026-11-25T19:28:25Z"}
	denied := margen.EventData{Outcome: margen.OutcomeDenied, Action: "licor", Amount: 900, Rule: "sin_licor",
		Version: 3, Member: "mem_ana", DecisionID: "dec_2", RefusalID: "ref_2"}
	allowed := margen.EventData{Outcome: margen.OutcomeAllowed, Action: "pan", Amount: 150, Version: 3,
		Member: "mem_ana", DecisionID: "dec_3", ActID: "act_3"}
	answered := margen.EventData{Action: "cortesia", Amount: 4000, Customer: "cus_1", Member: "mem_ana", Team: "sala",
		DecisionID: "dec_1", ActID: "act_1", ApprovalID: "apr_1", Status: margen.ApprovalApproved,
		ApproverRole: "supervisor", DecidedBy: "mem_sup", TimeToAnswer: 61000}
	moved := margen.EventData{Action: "cortesia", Amount: 4000, Member: "mem_ana", DecisionID: "dec_1",
		ApprovalID: "apr_1", Status: margen.Escalated, ApproverRole: "owner", FromRole: "supervisor",
		DueAt: "2026-11-25T20:28:25Z"}

	for _, c := range []struct {
		name string
		e    *margen.AuditEntry
		want []margen.EventPayload
	}{
		{"needs approval", entry(margen.ActionDecisionCreate, "mem_ana", "dec_1", needs), []margen.EventPayload{
			margen.DecisionMade{DecisionID: "dec_1", Outcome: margen.OutcomeNeedsApproval, Action: "cortesia", Amount: 4000,
				Customer: "cus_1", Rule: "cortesia_mesa", PolicyVersion: 3, Member: "mem_ana", Team: "sala", ApprovalID: "apr_1"},
			margen.ApprovalRequested{ApprovalID: "apr_1", DecisionID: "dec_1", Action: "cortesia", Amount: 4000,
				Customer: "cus_1", Rule: "cortesia_mesa", PolicyVersion: 3, Member: "mem_ana", Team: "sala",
				ApproverRole: "supervisor", DueAt: "2026-11-25T19:28:25Z"},
		}},
		{"denied", entry(margen.ActionDecisionCreate, "mem_ana", "dec_2", denied), []margen.EventPayload{
			margen.DecisionMade{DecisionID: "dec_2", Outcome: margen.OutcomeDenied, Action: "licor", Amount: 900,
				Rule: "sin_licor", PolicyVersion: 3, Member: "mem_ana", RefusalID: "ref_2"},
			margen.RefusalRecorded{RefusalID: "ref_2", DecisionID: "dec_2", Action: "licor", Amount: 900, Rule: "sin_licor",
				Member: "mem_ana"},
		}},
		{"allowed", entry(margen.ActionDecisionCreate, "mem_ana", "dec_3", allowed), []margen.EventPayload{
			margen.DecisionMade{DecisionID: "dec_3", Outcome: margen.OutcomeAllowed, Action: "pan", Amount: 150,
				PolicyVersion: 3, Member: "mem_ana", ActID: "act_3"},
		}},
		{"exception", entry(margen.ActionExceptionRequest, "mem_ana", "apr_1", needs), []margen.EventPayload{
			margen.ApprovalRequested{ApprovalID: "apr_1", DecisionID: "dec_1", Action: "cortesia", Amount: 4000,
				Customer: "cus_1", Rule: "cortesia_mesa", PolicyVersion: 3, Member: "mem_ana", Team: "sala",
				ApproverRole: "supervisor", DueAt: "2026-11-25T19:28:25Z"},
		}},
		{"approved", entry(margen.ActionApprovalApproved, "mem_sup", "apr_1", answered), []margen.EventPayload{
			margen.ApprovalDecided{ApprovalID: "apr_1", DecisionID: "dec_1", Status: margen.ApprovalApproved,
				Action: "cortesia", Amount: 4000, Customer: "cus_1", Member: "mem_ana", Team: "sala",
				ApproverRole: "supervisor", DecidedBy: "mem_sup", TimeToAnswer: 61000, ActID: "act_1"},
		}},
		{"escalated", entry(margen.ActionApprovalEscalated, "system", "apr_1", moved), []margen.EventPayload{
			margen.ApprovalEscalated{ApprovalID: "apr_1", DecisionID: "dec_1", Action: "cortesia", Amount: 4000,
				Member: "mem_ana", FromRole: "supervisor", ApproverRole: "owner", DueAt: "2026-11-25T20:28:25Z"},
		}},
		{"refusal by hand", entry(margen.ActionRefusalRecord, "mem_ana", "ref_9", margen.RefusalAudit{Action: "mesa",
			Amount: 0, CustomerLeft: margen.LeftUnhappy, Reason: margen.RefusalNoRule}), []margen.EventPayload{
			margen.RefusalRecorded{RefusalID: "ref_9", Action: "mesa", Member: "mem_ana", Reason: margen.RefusalNoRule,
				CustomerLeft: margen.LeftUnhappy},
		}},
		{"reaction", entry(margen.ActionReactionRecord, "mem_ana", "rea_1", margen.ReactionAudit{ActID: "act_3",
			Sentiment: margen.SentimentPositive, Source: margen.SourceEmployee}), []margen.EventPayload{
			margen.ReactionRecorded{ReactionID: "rea_1", ActID: "act_3", Source: margen.SourceEmployee,
				Sentiment: margen.SentimentPositive},
		}},
		{"policy", entry(margen.ActionPolicyPublish, "mem_own", "policy", margen.PolicyAudit{Note: "n",
			SourceSHA256: "ab", Version: 4}), []margen.EventPayload{
			margen.PolicyPublished{Version: 4, Note: "n", SourceSHA256: "ab"},
		}},
		{"announces nothing", entry(margen.ActionTokenRevoke, "mem_own", "tok_1", map[string]any{}), nil},
	} {
		got, err := margen.EventsOf(c.e)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.name, got, c.want)
		}
	}
}

// Data that does not decode is an error naming the entry, never an event
// with empty fields.
func TestEventsOfBadData(t *testing.T) {
	for _, a := range []margen.AuditAction{margen.ActionDecisionCreate, margen.ActionExceptionRequest,
		margen.ActionApprovalApproved, margen.ActionApprovalEscalated, margen.ActionRefusalRecord,
		margen.ActionReactionRecord, margen.ActionPolicyPublish} {
		for _, data := range []string{`{"amount":"many","version":"x","act_id":7,"action":1}`, `[1,2]`, `{`, ``} {
			e := &margen.AuditEntry{OrgID: "org_1", Seq: 7, Action: a, Data: json.RawMessage(data)}
			evs, err := margen.EventsOf(e)
			if err == nil || evs != nil {
				t.Errorf("%s with data %q: %v, %v; want an error", a, data, evs, err)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, "audit entry 7") || !strings.Contains(msg, string(a)) {
				t.Errorf("%s: the error does not name the entry: %v", a, err)
			}
		}
	}
}

// Every registered event type is derived from registered actions, has a
// payload of its own type and is announced by an entry of each action it
// names; and each payload's route carries what visibility needs.
func TestEventVocabulary(t *testing.T) {
	seen := map[margen.EventType]bool{}
	for _, d := range margen.EventVocabulary {
		if seen[d.Type] {
			t.Errorf("%s registered twice", d.Type)
		}
		seen[d.Type] = true
		if d.Payload == nil || d.Payload.EventType() != d.Type {
			t.Errorf("%s: payload %T is of another type", d.Type, d.Payload)
		}
		if d.Doc == "" || len(d.From) == 0 {
			t.Errorf("%s: undocumented", d.Type)
		}
		for _, a := range d.From {
			if !a.Known() {
				t.Errorf("%s: derived from %s, which is not registered", d.Type, a)
			}
			if e, _ := exampleOf(t, a, d.Type); e == nil {
				t.Errorf("no example %s entry announces %s", a, d.Type)
			}
		}
	}
	// And the other way round: what an entry announces is registered as
	// derived from its action.
	from := map[margen.EventType][]margen.AuditAction{}
	for _, d := range margen.EventVocabulary {
		from[d.Type] = d.From
	}
	for _, e := range examples {
		evs, err := margen.EventsOf(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if !slices.Contains(from[ev.EventType()], e.Action) {
				t.Errorf("%s announces %s, which EventVocabulary does not derive from it", e.Action, ev.EventType())
			}
		}
	}
	if len(margen.EventTypesAll) != len(margen.EventVocabulary) {
		t.Error("EventTypesAll and EventVocabulary differ")
	}
	// An approval event reaches the requester and the approver roles.
	r := margen.ApprovalEscalated{Member: "m", ApprovalID: "a", FromRole: "f", ApproverRole: "o"}.Route()
	if !reflect.DeepEqual(r, margen.EventRoute{Member: "m", ApprovalID: "a", ApproverRole: "o", FromRole: "f"}) {
		t.Errorf("route %+v", r)
	}
	// A case's escalation reaches the roles it was routed to before.
	r = margen.FollowUpEscalated{Member: "m", FromRole: "sup", Earlier: []string{"", "sup"}, ApproverRole: "owner"}.Route()
	if !reflect.DeepEqual(r, margen.EventRoute{Member: "m", ApproverRole: "owner", FromRole: "sup", Earlier: []string{"", "sup"}}) {
		t.Errorf("case route %+v", r)
	}
}

func TestWebhookBody(t *testing.T) {
	e, p := exampleOf(t, margen.ActionApprovalApproved, margen.EventApprovalDecided)
	b, err := margen.WebhookBody(e, p)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Type      margen.EventType `json:"type"`
		Timestamp string           `json:"timestamp"`
		Data      map[string]any   `json:"data"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != margen.EventApprovalDecided || got.Timestamp != e.At.Format(time.RFC3339Nano) ||
		got.Data["seq"] != float64(e.Seq) || got.Data["actor"] != e.Actor || got.Data["subject"] != e.Subject ||
		got.Data["status"] != margen.ApprovalApproved || got.Data["time_to_answer_ms"] != float64(754000) {
		t.Errorf("body %s", b)
	}
}

// What the stream and webhooks send decodes back into the payload it was
// made from.
func TestDecodePayload(t *testing.T) {
	for _, d := range margen.EventVocabulary {
		e, p := exampleOf(t, "", d.Type)
		if e == nil {
			t.Fatalf("no example of %s", d.Type)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		wh, err := margen.WebhookBody(e, p)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Type margen.EventType `json:"type"`
			Data json.RawMessage  `json:"data"`
		}
		if err := json.Unmarshal(wh, &body); err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{b, body.Data} {
			got, err := margen.DecodePayload(d.Type, data)
			if err != nil || !reflect.DeepEqual(got, p) {
				t.Errorf("%s: DecodePayload(%s) = %#v, %v; want %#v", d.Type, data, got, err, p)
			}
		}
	}
	if _, err := margen.DecodePayload("no.such_type", []byte(`{}`)); err == nil {
		t.Error("an unknown type decoded")
	}
	if _, err := margen.DecodePayload(margen.EventDecisionMade, []byte(`{"amount":"x"}`)); err == nil {
		t.Error("a bad payload decoded")
	}
}
