package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/margenhq/margen"
)

var _ margen.WebhookStore = (*DB)(nil)

// --- endpoints ---

const webhookSelect = "SELECT org_id, id, url, events, secret, active, created_at FROM webhooks"

func scanWebhook(s scanner) (margen.Webhook, error) {
	var w margen.Webhook
	var events []byte
	err := s.Scan(&w.OrgID, &w.ID, &w.URL, &events, &w.Secret, &w.Active, tsCol{&w.CreatedAt})
	if err != nil {
		return w, err
	}
	w.Events = []string{}
	if len(events) > 0 {
		if err := json.Unmarshal(events, &w.Events); err != nil {
			return w, err
		}
	}
	return w, nil
}

// NewWebhookSecret returns a fresh signing secret in the Standard Webhooks
// form: "whsec_" and the base64 of 24 random bytes.
func NewWebhookSecret() string {
	var key [24]byte
	rand.Read(key[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(key[:])
}

// CreateWebhook registers an endpoint (active; a secret is generated when
// w.Secret is empty). The endpoint receives the events of audit entries
// written after it was created, never older ones: its creation records the
// current audit seq, and the organisation's dispatch cursor is created (or,
// when no other endpoint is active, moved) to that seq so history is not
// scanned for nothing.
func (db *DB) CreateWebhook(ctx context.Context, wh *margen.Webhook, actor string, idem *margen.Idempotency) error {
	w := *wh
	if w.ID == "" {
		w.ID = margen.NewID("whk")
	}
	if w.Secret == "" {
		w.Secret = NewWebhookSecret()
	}
	if w.Events == nil {
		w.Events = []string{}
	}
	w.Active = true
	stamp(&w.CreatedAt)
	events, err := jsonValue(w.Events)
	if err != nil {
		return err
	}
	err = db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(w.OrgID)
		if err != nil {
			return err
		}
		if err := t.insertIdem(idem); err != nil {
			return err
		}
		var active int
		if err := t.queryRow("SELECT COUNT(*) FROM webhooks WHERE org_id = ? AND active", w.OrgID).Scan(&active); err != nil {
			return dbErr("count webhooks", err)
		}
		tail := " ON CONFLICT (org_id) DO NOTHING"
		if active == 0 {
			tail = " ON CONFLICT (org_id) DO UPDATE SET last_seq = excluded.last_seq WHERE webhook_cursors.last_seq < excluded.last_seq"
		}
		if _, err := t.exec("INSERT INTO webhook_cursors (org_id, last_seq) VALUES (?, ?)"+tail, w.OrgID, c.seq); err != nil {
			return dbErr("webhook cursor", err)
		}
		_, err = t.exec(`INSERT INTO webhooks (org_id, id, url, events, secret, active, after_seq, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			w.OrgID, w.ID, w.URL, events, w.Secret, true, c.seq, db.d.ts(w.CreatedAt))
		if err != nil {
			return conflictOr("create webhook", err, "error.webhook_exists")
		}
		return t.audit(c, newAudit(w.OrgID, actor, margen.ActionWebhookCreate, w.ID, map[string]any{
			"url": w.URL, "events": w.Events,
		}, w.CreatedAt))
	})
	if err != nil {
		return err
	}
	*wh = w
	return nil
}

// ListWebhooks lists the organisation's endpoints, active or not, newest
// first. Secrets are left out (GetWebhook has them).
func (db *DB) ListWebhooks(ctx context.Context, orgID string) ([]margen.Webhook, error) {
	ws, err := getMany(ctx, db, scanWebhook, webhookSelect+" WHERE org_id = ? ORDER BY id DESC", orgID)
	for i := range ws {
		ws[i].Secret = ""
	}
	return ws, err
}

// GetWebhook returns an endpoint with its secret (the API shows the secret
// only when the endpoint is created; the delivery worker signs with it).
func (db *DB) GetWebhook(ctx context.Context, orgID, id string) (*margen.Webhook, error) {
	return getOne(ctx, db, "webhook", scanWebhook, webhookSelect+" WHERE org_id = ? AND id = ?", orgID, id)
}

// DeleteWebhook deactivates an endpoint: no delivery is created for it any
// more and its pending deliveries are given up (status failed, their jobs
// cancelled); all stay visible. Deleting an inactive endpoint changes nothing.
func (db *DB) DeleteWebhook(ctx context.Context, orgID, id, actor string) error {
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		// Wait for a dispatch in progress (it holds the cursor row), so none
		// creates a delivery for this endpoint after it is gone.
		var last int64
		err = t.queryRow("SELECT last_seq FROM webhook_cursors WHERE org_id = ?"+db.d.forUpdate(), orgID).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return dbErr("lock webhook cursor", err)
		}
		var url string
		var active bool
		err = t.queryRow("SELECT url, active FROM webhooks WHERE org_id = ? AND id = ?", orgID, id).Scan(&url, &active)
		if errors.Is(err, sql.ErrNoRows) {
			return margen.NotFound("webhook")
		}
		if err != nil {
			return dbErr("read webhook", err)
		}
		if !active {
			return nil
		}
		if _, err := t.exec("UPDATE webhooks SET active = ? WHERE org_id = ? AND id = ?", false, orgID, id); err != nil {
			return dbErr("delete webhook", err)
		}
		at := now()
		_, err = t.exec(`UPDATE jobs SET status = 'cancelled', finished_at = ?, last_error = 'endpoint deleted',
				lease_owner = NULL, lease_until = NULL
			WHERE kind = ? AND org_id = ? AND status = 'pending' AND unique_key IN (
				SELECT id FROM deliveries WHERE org_id = ? AND webhook_id = ? AND status = 'pending')`,
			db.d.ts(at), margen.JobWebhookDelivery, orgID, orgID, id)
		if err != nil {
			return dbErr("delete webhook", err)
		}
		res, err := t.exec(`UPDATE deliveries SET status = 'failed'
			WHERE org_id = ? AND webhook_id = ? AND status = 'pending'`, orgID, id)
		if err != nil {
			return dbErr("delete webhook", err)
		}
		dropped, err := res.RowsAffected()
		if err != nil {
			return dbErr("delete webhook", err)
		}
		return t.audit(c, newAudit(orgID, actor, margen.ActionWebhookDelete, id, map[string]any{
			"url": url, "dropped_deliveries": dropped,
		}, at))
	})
}

// The active endpoints' reads. The organisations with one scan
// webhooks_active (migration 00021); an organisation's own, few, are read
// by their primary key, in id order.
const (
	orgsWithWebhooksQuery = "SELECT DISTINCT org_id FROM webhooks WHERE active ORDER BY org_id"
	activeHooksQuery      = "SELECT id, events, after_seq FROM webhooks WHERE org_id = ? AND active ORDER BY id"
)

// OrgsWithWebhooks lists the organisations that have an active endpoint.
func (db *DB) OrgsWithWebhooks(ctx context.Context) ([]string, error) {
	return getMany(ctx, db, func(s scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, orgsWithWebhooksQuery)
}

// --- dispatch ---

var deliveryCols = []string{"org_id", "id", "webhook_id", "event_type", "audit_seq", "payload", "status", "attempts",
	"next_at", "created_at"}

// DispatchWebhooks turns the organisation's audit entries after its cursor
// (at most limit of them) into pending deliveries: one per event type the
// entry announces (margen.EventsOf) and active endpoint subscribed to it
// (or to "*") that existed before the entry. It locks the cursor row, so
// concurrent dispatchers (of this process or another) take turns and never
// both read the same entries; deliveries are unique per (endpoint, audit
// seq, event type) besides. Each delivery is sent by a job
// (margen.JobWebhookDelivery) enqueued in the same transaction. Entries come
// from committed transactions only: a rolled-back change has no audit
// entry, hence no delivery.
func (db *DB) DispatchWebhooks(ctx context.Context, orgID string, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	created := 0
	err := db.writeTx(ctx, func(t *wtx) error {
		created = 0
		var last int64
		err := t.queryRow("SELECT last_seq FROM webhook_cursors WHERE org_id = ?"+db.d.forUpdate(), orgID).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no endpoint was ever created
		}
		if err != nil {
			return dbErr("lock webhook cursor", err)
		}
		type hook struct {
			id     string
			events []string
			after  int64
		}
		rows, err := t.query(activeHooksQuery, orgID)
		if err != nil {
			return dbErr("read webhooks", err)
		}
		hooks, err := collect(rows, func(s scanner) (hook, error) {
			var h hook
			var events []byte
			if err := s.Scan(&h.id, &events, &h.after); err != nil {
				return h, err
			}
			return h, json.Unmarshal(events, &h.events)
		})
		if err != nil {
			return err
		}
		if len(hooks) == 0 {
			return nil
		}
		rows, err = t.query(auditSelect+" WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?", orgID, last, limit)
		if err != nil {
			return dbErr("read audit", err)
		}
		entries, err := collect(rows, scanAudit)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		at := now
		var ds []margen.Delivery
		for i := range entries {
			e := &entries[i]
			// An entry whose data does not decode stops the organisation's
			// dispatch here (the worker logs it each round) rather than
			// skipping events receivers are owed.
			evs, err := margen.EventsOf(e)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				typ := ev.EventType()
				var payload json.RawMessage
				for _, h := range hooks {
					if e.Seq <= h.after || !(slices.Contains(h.events, string(typ)) || slices.Contains(h.events, "*")) {
						continue
					}
					if payload == nil {
						if payload, err = margen.WebhookBody(e, ev); err != nil {
							return err
						}
					}
					ds = append(ds, margen.Delivery{ID: margen.NewID("msg"), OrgID: orgID, WebhookID: h.id,
						EventType: typ, AuditSeq: e.Seq, Payload: payload, Status: margen.DeliveryPending,
						NextAt: at, CreatedAt: at})
				}
			}
		}
		n, err := t.insertCount("deliveries", deliveryCols, " ON CONFLICT DO NOTHING", len(ds), func(i int, args []any) []any {
			x := &ds[i]
			return append(args, x.OrgID, x.ID, x.WebhookID, x.EventType, x.AuditSeq, string(x.Payload), x.Status,
				x.Attempts, db.d.ts(x.NextAt), db.d.ts(x.CreatedAt))
		})
		if err != nil {
			return dbErr("insert deliveries", err)
		}
		created = int(n)
		jobs := make([]margen.Job, len(ds))
		for i := range ds {
			jobs[i] = deliveryJob(&ds[i])
		}
		if _, err := t.enqueueJobs(jobs, at); err != nil {
			return err
		}
		if _, err := t.exec("UPDATE webhook_cursors SET last_seq = ? WHERE org_id = ?", entries[len(entries)-1].Seq, orgID); err != nil {
			return dbErr("move webhook cursor", err)
		}
		return nil
	})
	return created, err
}

// deliveryJob is the job that sends a delivery: unique per delivery, so a
// delivery never has two jobs; a job whose delivery was not inserted (a
// duplicate) finds nothing to send.
func deliveryJob(d *margen.Delivery) margen.Job {
	return margen.Job{Kind: margen.JobWebhookDelivery, OrgID: d.OrgID, UniqueKey: d.ID,
		Payload: json.RawMessage(`{"delivery":"` + d.ID + `"}`), RunAt: d.NextAt, CreatedAt: d.CreatedAt}
}

// insertCount is insertMany that reports how many rows were inserted (rows
// skipped by ON CONFLICT DO NOTHING do not count).
func (t *wtx) insertCount(table string, cols []string, tail string, n int, row func(i int, args []any) []any) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	per := min(t.db.d.maxParams()/len(cols), 256)
	head := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "
	var total int64
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, (end-start)*len(cols))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			t.db.d.placeholders(&b, len(cols), len(args))
			args = row(i, args)
		}
		b.WriteString(tail)
		res, err := t.execRaw(b.String(), args...)
		if err != nil {
			return total, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += k
	}
	return total, nil
}

// --- deliveries ---

var deliverySelectCols = []string{"org_id", "id", "webhook_id", "event_type", "audit_seq", "payload", "status",
	"attempts", "next_at", "created_at", "last_status"}

// deliverySelect reads deliveries with their endpoint's URL.
var deliverySelect = "SELECT " + strings.Join(deliverySelectCols, ", ") +
	", COALESCE((SELECT url FROM webhooks w WHERE w.org_id = deliveries.org_id AND w.id = deliveries.webhook_id), '')" +
	" FROM deliveries"

func scanDelivery(s scanner) (margen.Delivery, error) {
	var d margen.Delivery
	var payload []byte
	err := s.Scan(&d.OrgID, &d.ID, &d.WebhookID, &d.EventType, &d.AuditSeq, &payload, &d.Status, &d.Attempts,
		tsCol{&d.NextAt}, tsCol{&d.CreatedAt}, &d.LastStatus, &d.URL)
	d.Payload = json.RawMessage(payload)
	return d, err
}

// DeliveryForAttempt returns a delivery (without its history) with its
// endpoint's URL and secret.
func (db *DB) DeliveryForAttempt(ctx context.Context, orgID, id string) (*margen.Delivery, error) {
	return getOne(ctx, db, "delivery", func(s scanner) (margen.Delivery, error) {
		var d margen.Delivery
		var payload []byte
		err := s.Scan(&d.OrgID, &d.ID, &d.WebhookID, &d.EventType, &d.AuditSeq, &payload, &d.Status, &d.Attempts,
			tsCol{&d.NextAt}, tsCol{&d.CreatedAt}, &d.LastStatus, &d.URL, &d.Secret)
		d.Payload = json.RawMessage(payload)
		return d, err
	}, "SELECT "+strings.Join(prefixed("d.", deliverySelectCols), ", ")+`, w.url, w.secret
		FROM deliveries d JOIN webhooks w ON w.org_id = d.org_id AND w.id = d.webhook_id
		WHERE d.org_id = ? AND d.id = ?`, orgID, id)
}

func prefixed(prefix string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = prefix + c
	}
	return out
}

// maxAttemptText bounds the response body and error kept per attempt.
const maxAttemptText = 1024

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Delivered reports whether an attempt delivered: the receiver answered
// with a 2xx status.
func Delivered(a margen.DeliveryAttempt) bool {
	return a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300
}

// FinishDelivery records an attempt (its response and error cut to 1 KiB)
// and, in the same transaction, the result r of the job j that made it. A
// 2xx answer delivers (even from a claim that lost its lease: the receiver
// has the event); otherwise, while j's claim holds, the delivery waits for
// the job's retry (r.RetryAt) or fails with it (no retry). A claim that no
// longer holds the job (its lease ran out, or the delivery was replayed)
// records its attempt and changes nothing else. d is updated in place.
func (db *DB) FinishDelivery(ctx context.Context, d *margen.Delivery, a margen.DeliveryAttempt, j *margen.Job, r margen.JobResult) error {
	stamp(&a.At)
	a.Response = clip(a.Response, maxAttemptText)
	a.Error = clip(a.Error, maxAttemptText)
	delivered := Delivered(a)
	var held, changed bool
	err := db.writeTx(ctx, func(t *wtx) error {
		var res sql.Result
		if err := t.exists("delivery", "SELECT 1 FROM deliveries WHERE org_id = ? AND id = ?", d.OrgID, d.ID); err != nil {
			return err
		}
		_, err := t.exec(`INSERT INTO delivery_attempts (org_id, delivery_id, at, status_code, error, response, duration_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, d.OrgID, d.ID, db.d.ts(a.At), a.StatusCode, a.Error, a.Response, a.DurationMS)
		if err != nil {
			return dbErr("record attempt", err)
		}
		if _, err := t.exec("UPDATE deliveries SET attempts = attempts + 1 WHERE org_id = ? AND id = ?", d.OrgID, d.ID); err != nil {
			return dbErr("record attempt", err)
		}
		if held, err = t.finishJob(j, r); err != nil {
			return err
		}
		switch {
		case delivered:
			res, err = t.exec(`UPDATE deliveries SET status = 'delivered', delivered_at = ?, last_status = ?
				WHERE org_id = ? AND id = ? AND status = 'pending'`, db.d.ts(a.At), a.StatusCode, d.OrgID, d.ID)
		case !held:
			return nil
		case r.RetryAt != nil:
			res, err = t.exec(`UPDATE deliveries SET next_at = ?, last_status = ?
				WHERE org_id = ? AND id = ? AND status = 'pending'`, db.d.ts(*r.RetryAt), a.StatusCode, d.OrgID, d.ID)
		default:
			res, err = t.exec(`UPDATE deliveries SET status = 'failed', last_status = ?
				WHERE org_id = ? AND id = ? AND status = 'pending'`, a.StatusCode, d.OrgID, d.ID)
		}
		if err != nil {
			return dbErr("finish delivery", err)
		}
		n, err := res.RowsAffected()
		changed = n == 1
		return dbErr("finish delivery", err)
	})
	if err != nil {
		return err
	}
	d.History = append(d.History, a)
	d.Attempts++
	if changed {
		d.LastStatus = a.StatusCode
		switch {
		case delivered:
			d.Status = margen.DeliveryDelivered
		case r.RetryAt != nil:
			d.NextAt = r.RetryAt.UTC().Truncate(time.Microsecond)
		default:
			d.Status = margen.DeliveryFailed
		}
	}
	return nil
}

// ListDeliveries pages through the organisation's deliveries, newest first.
func (db *DB) ListDeliveries(ctx context.Context, orgID string, f margen.DeliveryFilter) ([]margen.Delivery, error) {
	var w where
	w.add("org_id = ?", orgID)
	w.eq("webhook_id", f.WebhookID)
	w.eq("status", f.Status)
	w.page(f.Page)
	return getMany(ctx, db, scanDelivery, deliverySelect+w.sql()+" ORDER BY id DESC LIMIT ?", w.argsLimit(f.Page)...)
}

const attemptSelect = "SELECT at, status_code, error, response, duration_ms FROM delivery_attempts"

func scanAttempt(s scanner) (margen.DeliveryAttempt, error) {
	var a margen.DeliveryAttempt
	err := s.Scan(tsCol{&a.At}, &a.StatusCode, &a.Error, &a.Response, &a.DurationMS)
	return a, err
}

// GetDelivery returns a delivery with its attempts, oldest first.
func (db *DB) GetDelivery(ctx context.Context, orgID, id string) (*margen.Delivery, error) {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return nil, err
	}
	defer release()
	return getDelivery(ctx, c, db.d, orgID, id)
}

func getDelivery(ctx context.Context, q querier, d dialect, orgID, id string) (*margen.Delivery, error) {
	x, err := scanDelivery(q.QueryRowContext(ctx, d.rebind(deliverySelect+" WHERE org_id = ? AND id = ?"), orgID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound("delivery")
	}
	if err != nil {
		return nil, dbErr("get delivery", err)
	}
	rows, err := q.QueryContext(ctx, d.rebind(attemptSelect+" WHERE org_id = ? AND delivery_id = ? ORDER BY at"), orgID, id)
	if err != nil {
		return nil, dbErr("get delivery", err)
	}
	if x.History, err = collect(rows, scanAttempt); err != nil {
		return nil, err
	}
	return &x, nil
}

// ReplayDelivery queues a delivery again for an attempt now, whatever its
// status: its job is re-armed with a fresh attempt budget (a delivery being
// sent keeps its lease until it runs out). The endpoint must still
// be active (ECONFLICT "error.webhook_inactive" otherwise).
func (db *DB) ReplayDelivery(ctx context.Context, orgID, id, actor string, now time.Time) (*margen.Delivery, error) {
	var out *margen.Delivery
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		var status, webhookID, eventType string
		var seq int64
		var active bool
		err = t.queryRow(`SELECT d.status, d.webhook_id, d.event_type, d.audit_seq, COALESCE(w.active, FALSE)
			FROM deliveries d LEFT JOIN webhooks w ON w.org_id = d.org_id AND w.id = d.webhook_id
			WHERE d.org_id = ? AND d.id = ?`, orgID, id).Scan(&status, &webhookID, &eventType, &seq, &active)
		if errors.Is(err, sql.ErrNoRows) {
			return margen.NotFound("delivery")
		}
		if err != nil {
			return dbErr("read delivery", err)
		}
		if !active {
			return margen.Errorf(margen.ECONFLICT, "error.webhook_inactive")
		}
		at := now
		_, err = t.exec(`UPDATE deliveries SET status = 'pending', next_at = ? WHERE org_id = ? AND id = ?`,
			db.d.ts(at), orgID, id)
		if err != nil {
			return dbErr("replay delivery", err)
		}
		if err := t.rearmJob(deliveryJob(&margen.Delivery{OrgID: orgID, ID: id, NextAt: at})); err != nil {
			return err
		}
		err = t.audit(c, newAudit(orgID, actor, margen.ActionWebhookReplay, id, map[string]any{
			"webhook_id": webhookID, "event_type": eventType, "audit_seq": seq, "was": status,
		}, at))
		if err != nil {
			return err
		}
		out, err = getDelivery(t.ctx, t.tx, db.d, orgID, id)
		return err
	})
	return out, err
}

// PendingDeliveries counts deliveries neither delivered nor failed, of every
// organisation (the delivery queue's depth).
func (db *DB) PendingDeliveries(ctx context.Context) (int, error) {
	c, release, err := db.conn(ctx, db.read)
	if err != nil {
		return 0, err
	}
	defer release()
	var n int
	err = c.QueryRowContext(ctx, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'").Scan(&n)
	return n, dbErr("count pending deliveries", err)
}
