package httpapi_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// openapi.json describes the event and audit vocabulary as margen defines
// it: the event types, one schema per payload with the payload's fields,
// and the audit actions.
func TestOpenAPIVocabulary(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Type        string              `json:"type"`
		Format      string              `json:"format"`
		Enum        []string            `json:"enum"`
		Required    []string            `json:"required"`
		Properties  map[string]*schema  `json:"properties"`
		Items       *schema             `json:"items"`
		OneOf       []map[string]string `json:"oneOf"`
		Description string              `json:"description"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]*schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	sc := doc.Components.Schemas
	var types []string
	for _, typ := range margen.EventTypesAll {
		types = append(types, string(typ))
	}
	ev := sc["Event"]
	if ev == nil || ev.Properties["type"] == nil || ev.Properties["data"] == nil {
		t.Fatal("no Event schema with type and data")
	}
	if got := ev.Properties["type"].Enum; !slices.Equal(got, types) {
		t.Errorf("Event.type enum = %v, want %v", got, types)
	}
	if got := sc["WebhookRequest"].Properties["events"].Items.Enum; !slices.Equal(got, append([]string{"*"}, types...)) {
		t.Errorf("WebhookRequest.events enum = %v", got)
	}
	var actions []string
	for _, a := range margen.AuditActions {
		actions = append(actions, string(a.Action))
	}
	if got := sc["AuditEntry"].Properties["action"].Enum; !slices.Equal(got, actions) {
		t.Errorf("AuditEntry.action enum = %v, want %v", got, actions)
	}

	var refs []string
	for _, r := range ev.Properties["data"].OneOf {
		refs = append(refs, r["$ref"])
	}
	for i, d := range margen.EventVocabulary {
		rt := reflect.TypeOf(d.Payload)
		if i >= len(refs) || refs[i] != "#/components/schemas/"+rt.Name() {
			t.Errorf("Event.data.oneOf = %v: %s missing or out of order", refs, rt.Name())
		}
		s := sc[rt.Name()]
		if s == nil {
			t.Errorf("no schema %s for %s", rt.Name(), d.Type)
			continue
		}
		var fields, required []string
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields = append(fields, name)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
			p := s.Properties[name]
			if p == nil {
				t.Errorf("%s.%s is not in the schema", rt.Name(), name)
				continue
			}
			want := map[reflect.Kind]string{reflect.String: "string", reflect.Int: "integer", reflect.Int64: "integer",
				reflect.Bool: "boolean", reflect.Slice: "array", reflect.Map: "object"}[f.Type.Kind()]
			if p.Type != want {
				t.Errorf("%s.%s: type %q, want %q", rt.Name(), name, p.Type, want)
			}
		}
		if len(s.Properties) != len(fields) {
			t.Errorf("%s: schema properties %d, payload fields %v", rt.Name(), len(s.Properties), fields)
		}
		if !slices.Equal(s.Required, required) {
			t.Errorf("%s: required %v, want %v", rt.Name(), s.Required, required)
		}
	}
}

// A reconnecting client's replay goes past an audit entry whose data does
// not decode (logged on the server) to the events after it.
func TestEventReplaySkipsUndecodableEntry(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		ctx := context.Background()
		org := e.orgA.ID
		from, err := e.db.LastAuditSeq(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		err = e.db.Import(ctx, margen.ImportQuery{OrgID: org, Kind: margen.ImportTeams},
			func(*margen.ImportState) (*margen.ImportWrite, error) {
				return &margen.ImportWrite{Audit: []margen.AuditEntry{{OrgID: org, Actor: e.member["ana"].ID,
					Action: margen.ActionPolicyPublish, Subject: "policy", Data: json.RawMessage(`{"version":"two"}`)}}}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		d := e.ask("ana", 1000000, "mesa-60")
		s := e.stream("ana", "Last-Event-ID", strconv.FormatInt(from, 10))
		evs := s.until(time.Second, func(ev sseEvent) bool { return ev.Event == margen.EventApprovalRequested })
		if len(evs) != 2 || evs[0].Event != margen.EventDecisionMade || evs[0].Data.Seq != from+2 ||
			evs[1].Data.Data.ApprovalID != d.ApprovalID {
			t.Fatalf("replayed %+v", evs)
		}
	})
}
