package margen_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// TestEraseCustomerRule: the write-set empties the customer and the free
// text of the rows read, keeps the id, drops only the stored answers and
// files that mention the customer, and its audit entry holds counts, no
// erased data; an erased customer gives a no-op.
func TestEraseCustomerRule(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	cus := margen.Customer{OrgID: "org_1", Ref: "rosa-p", Name: "Rosa Pérez", Contact: "+57 300 1", Tags: []string{"vip"}}
	cus.ID = margen.CustomerID("org_1", cus.Ref)
	st := &margen.ErasureState{Customer: cus, Rows: map[string][]string{
		"decisions": {"dec_1", "dec_2"}, "acts": {"act_1"}, "survey_answers": {"sva_1"}, "refusals": nil}}
	st.Idempotency = []margen.Idempotency{
		{OrgID: "org_1", MemberID: "m", Key: "by-id", Response: []byte(`{"status":201,"body":{"act_id":"act_1","note":"x"}}`)},
		{OrgID: "org_1", MemberID: "m", Key: "by-name", Response: []byte(`{"body":{"reason":"para Rosa Pérez"}}`)},
		{OrgID: "org_1", MemberID: "m", Key: "escaped", Response: []byte(`{"body":{"reason":"para Rosa P\u00e9rez"}}`)},
		{OrgID: "org_1", MemberID: "m", Key: "other", Response: []byte(`{"body":{"act_id":"act_9","customer_id":"cus_x"}}`)},
		{OrgID: "org_1", MemberID: "m", Key: "prefix", Response: []byte(`{"body":{"act_id":"act_10"}}`)},
	}
	st.Uploads = []margen.Upload{{ID: "up_1", Data: []byte("ref,name\nrosa-p,Rosa\n")}, {ID: "up_2", Data: []byte("ref\nluis\n")}}
	w, err := margen.EraseCustomer(st, "mem_boss", at)
	if err != nil {
		t.Fatal(err)
	}
	if c := w.Customer; c.ID != cus.ID || c.Ref != cus.ID || c.Name != "" || c.Contact != "" || len(c.Tags) != 0 || !c.Erased() {
		t.Errorf("customer written: %+v", c)
	}
	var cleared []string
	for _, cl := range w.Clear {
		cleared = append(cleared, cl.Table+":"+strings.Join(cl.Cols, ",")+":"+strings.Join(cl.IDs, ","))
	}
	if got, want := strings.Join(cleared, " "), "decisions:reason:dec_1,dec_2 acts:reason:act_1 survey_answers:comment:sva_1"; got != want {
		t.Errorf("cleared %q, want %q", got, want)
	}
	var keys []string
	for _, k := range w.Idempotency {
		keys = append(keys, k.Key)
	}
	if got := strings.Join(keys, ","); got != "by-id,by-name,escaped" {
		t.Errorf("idempotency records dropped: %s, want by-id,by-name,escaped", got)
	}
	if len(w.Uploads) != 1 || w.Uploads[0] != "up_1" {
		t.Errorf("uploads dropped: %v", w.Uploads)
	}
	if w.Audit == nil || w.Audit.Action != margen.ActionCustomerErase || w.Audit.Subject != cus.ID || w.Audit.Actor != "mem_boss" {
		t.Fatalf("audit entry %+v", w.Audit)
	}
	for _, s := range []string{"Rosa", "rosa-p", "+57", "vip"} {
		if bytes.Contains(w.Audit.Data, []byte(s)) {
			t.Errorf("audit data %s holds %q", w.Audit.Data, s)
		}
	}
	var ad margen.ErasureAudit
	if err := json.Unmarshal(w.Audit.Data, &ad); err != nil || ad.Rows["decisions"] != 2 || ad.Rows["customers"] != 1 || ad.Rows["uploads"] != 1 {
		t.Errorf("audit data %s (%v)", w.Audit.Data, err)
	}
	evs, err := margen.EventsOf(w.Audit)
	if err != nil || len(evs) != 1 || evs[0].EventType() != margen.EventCustomerErased {
		t.Errorf("events %v (%v), want customer.erased", evs, err)
	}

	again, err := margen.EraseCustomer(&margen.ErasureState{Customer: w.Customer, Idempotency: st.Idempotency}, "mem_boss", at)
	if err != nil || again.Audit != nil || again.Result.Erased || len(again.Clear) != 0 || len(again.Idempotency) != 0 {
		t.Errorf("second erasure %+v (%v), want a no-op", again, err)
	}
	// A short name is not searched for: "Al" would match half of every answer.
	short := margen.Customer{OrgID: "org_1", Ref: "x1", Name: "Al"}
	short.ID = margen.CustomerID("org_1", short.Ref)
	w, _ = margen.EraseCustomer(&margen.ErasureState{Customer: short, Idempotency: []margen.Idempotency{
		{Key: "k", Response: []byte(`{"body":{"reason":"Always"}}`)}}}, "m", at)
	if len(w.Idempotency) != 0 {
		t.Errorf("a two-letter name matched %v", w.Idempotency)
	}
}

// TestPersonalExport: the export is one JSON object with the sections in
// order; a section past MaxExportRows is cut and named; nothing is written
// before the first row.
func TestPersonalExport(t *testing.T) {
	var b bytes.Buffer
	e := margen.NewPersonalExport(&b, time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	if b.Len() != 0 {
		t.Fatalf("written before the first row: %s", b.String())
	}
	e.Add("customer", map[string]string{"id": "cus_1"})
	for i := range margen.MaxExportRows + 5 {
		e.Add("acts", i)
	}
	e.Add("audit", "x")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Format     string
		ExportedAt time.Time `json:"exported_at"`
		Customer   map[string]string
		Acts       []int
		Audit      []string
		Truncated  []string
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %.300s", err, b.String())
	}
	if doc.Format != "margen.customer-export/1" || doc.Customer["id"] != "cus_1" || len(doc.Acts) != margen.MaxExportRows ||
		len(doc.Audit) != 1 || len(doc.Truncated) != 1 || doc.Truncated[0] != "acts" || doc.ExportedAt.IsZero() {
		t.Errorf("export: format %q customer %v acts %d audit %v truncated %v", doc.Format, doc.Customer, len(doc.Acts), doc.Audit, doc.Truncated)
	}
}
