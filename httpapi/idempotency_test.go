package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/jobs"
)

// TestIdempotencyExpiry: a key's answer is replayed until it expires (24 h
// by default); then the key is free again, and the purge job deletes the
// expired records.
func TestIdempotencyExpiry(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		ctx := context.Background()
		d1, first := e.decide("ana", gift(100000, "exp"), "Idempotency-Key", "exp-1")
		first.want(201)
		// The answer to an approval, stored as sent.
		asked := e.ask("ana", 1000000, "exp-2")
		url := "/api/v1/approvals/" + asked.ApprovalID + "/approve"
		a1 := e.do("POST", url, "sara", `{"comment":"sí"}`, "Idempotency-Key", "exp-3").want(200)
		e.clock.Advance(margen.DefaultIdempotencyTTL - time.Second)
		_, again := e.decide("ana", gift(100000, "exp"), "Idempotency-Key", "exp-1")
		again.want(201)
		if again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
			t.Fatalf("replay before the expiry: %s", again.body)
		}
		a2 := e.do("POST", url, "sara", `{"comment":"sí"}`, "Idempotency-Key", "exp-3").want(200)
		if a2.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(a1.body, a2.body) {
			t.Fatalf("answer replay: %s\n%s", a2.body, a1.body)
		}
		e.clock.Advance(time.Second)
		d3, fresh := e.decide("ana", gift(100000, "exp"), "Idempotency-Key", "exp-1")
		fresh.want(201)
		if fresh.header.Get("Idempotent-Replayed") != "" || d3.ID == d1.ID {
			t.Fatalf("an expired key was replayed: %s", fresh.body)
		}
		// The purge job deletes what expired (the approval's answer), not the
		// fresh record that took its key back.
		r := jobs.New(e.db, jobs.Options{Clock: e.clock})
		r.Register(margen.JobPurge, jobs.Purge(e.db, time.Hour, time.Hour))
		if n, err := r.Once(ctx); err != nil || n != 0 {
			t.Fatalf("purge ran before its slot: %d, %v", n, err)
		}
		e.clock.Advance(time.Hour)
		if n, err := r.Once(ctx); err != nil || n != 1 {
			t.Fatalf("purge: %d, %v", n, err)
		}
		ana, sara := e.member["ana"].ID, e.member["sara"].ID
		if _, err := e.db.Idempotency(ctx, e.orgA.ID, sara, "exp-3"); !margen.IsCode(err, margen.ENOTFOUND) {
			t.Fatalf("expired record after the purge: %v", err)
		}
		if rec, err := e.db.Idempotency(ctx, e.orgA.ID, ana, "exp-1"); err != nil || !rec.Live(e.clock.Now()) {
			t.Fatalf("fresh record after the purge: %+v, %v", rec, err)
		}
		_, last := e.decide("ana", gift(100000, "exp"), "Idempotency-Key", "exp-1")
		if last.want(201).header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(last.body, fresh.body) {
			t.Fatalf("replay after the purge: %s", last.body)
		}
	})
}

// TestEncodeAnswer: the stored form of an answer reads back as what was
// sent.
func TestEncodeAnswer(t *testing.T) {
	for _, body := range []string{`{"id":"dec_1","explanation":{"message":"«sí»"}}`, `[]`, ``} {
		var a struct {
			Status int               `json:"status"`
			Header map[string]string `json:"header"`
			Body   json.RawMessage   `json:"body"`
		}
		enc := httpapi.EncodeAnswer(201, []byte(body))
		if err := json.Unmarshal(enc, &a); err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		want := body
		if want == "" {
			want = "null"
		}
		if a.Status != 201 || a.Header["Content-Type"] != "application/json" || string(a.Body) != want {
			t.Fatalf("%s decodes as %+v", enc, a)
		}
	}
}
