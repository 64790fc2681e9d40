package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/events"
)

// defaultHeartbeat is how often an idle stream sends a comment line, so
// proxies and load balancers do not close it and a dead client is noticed.
const defaultHeartbeat = 15 * time.Second

// streamEvent is the data line of one Server-Sent Event.
type streamEvent struct {
	Seq     int64               `json:"seq"`
	Type    margen.EventType    `json:"type"`
	At      time.Time           `json:"at"`
	Actor   string              `json:"actor"`
	Subject string              `json:"subject"`
	Data    margen.EventPayload `json:"data"`
	// Lagged says events were dropped before this one because the client
	// read too slowly (or, after a reconnection, that more was missed than
	// could be replayed): reload what you show.
	Lagged bool `json:"lagged,omitempty"`
}

// maxBackfill bounds the audit entries replayed to a client reconnecting
// with Last-Event-ID.
const maxBackfill = 500

// streamEvents is GET /api/v1/events: a Server-Sent Events stream of what
// the member may see, as it is committed (id: the audit sequence number,
// event: the type, data: one JSON object). Approvers get the requests
// routed to roles they can decide, requesters the answers to their own
// requests, supervisors and above everything in their organisation.
//
// The stream ends when the client goes away or the server shuts down; a
// client reconnects on its own (EventSource does, after the retry delay),
// sending the Last-Event-ID it saw: what it missed in between is replayed
// from the audit trail.
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request) {
	if s.broker == nil || s.approvals == nil {
		s.problem(w, r, margen.Errorf(margen.EUNAVAILABLE, "error.unavailable"))
		return
	}
	st := state(r)
	ctx := r.Context()
	org, m := st.org, st.member
	closeStream, err := s.streams.Open(org.ID, m.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	defer closeStream()
	visible := func(ev events.Event) bool {
		return s.approvals.Visible(ctx, org, m, ev)
	}
	// The stream ends as soon as the broker sees its token revoked or its
	// member deactivated in the audit trail, whichever process did it.
	tokenID := st.tokenID
	revoked := func(e *margen.AuditEntry) bool {
		return e.Action == margen.ActionTokenRevoke && e.Subject == tokenID ||
			e.Action == margen.ActionMemberDeactivate && e.Subject == m.ID
	}
	evs, unsubscribe := s.broker.SubscribeUntil(org.ID, visible, revoked)
	defer unsubscribe()
	// The token cache may be seconds old: a token revoked before the
	// subscription, which the broker will never see pass by, is refused
	// here.
	if !s.stillAllowed(ctx, r, m) {
		s.problem(w, r, margen.Errorf(margen.EUNAUTHORIZED, "error.unauthorized"))
		return
	}
	// Replay what a reconnecting client missed. The subscription came
	// first, so nothing falls between the two; what both carry is sent once
	// (the live events up to the last replayed seq are skipped).
	var missed []events.Event
	var replayedTo int64
	lagged := false
	if last, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && last >= 0 {
		entries, err := s.store.ListAudit(ctx, org.ID, last, maxBackfill)
		if err != nil {
			s.problem(w, r, err)
			return
		}
		for i := range entries {
			evs, err := events.FromAudit(&entries[i])
			if err != nil {
				// The replay goes on past an entry it cannot announce, as
				// the live stream does.
				s.log.Error("event stream: cannot replay an audit entry", "request_id", reqID(r), "org", org.ID,
					"seq", entries[i].Seq, "action", entries[i].Action, "err", err)
			}
			for _, ev := range evs {
				if visible(ev) {
					missed = append(missed, ev)
				}
			}
			replayedTo = entries[i].Seq
		}
		lagged = len(entries) == maxBackfill // more may lie beyond the replay
	}

	// The server's read and write timeouts protect ordinary requests from
	// slow clients; they would cut a stream that is meant to stay open.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 3000\n: connected\n\n")); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		s.log.Warn("event stream: cannot flush", "request_id", reqID(r), "err", err)
		return
	}

	var buf bytes.Buffer
	for _, ev := range missed {
		if err := writeEvent(&buf, ev); err != nil {
			s.log.Error("event stream: cannot encode an event", "request_id", reqID(r), "org", org.ID, "err", err)
		}
	}
	if buf.Len() > 0 {
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}

	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case <-heartbeat.C:
			// A stream outlives the token cache: check the credentials
			// again, so a revoked token, a deactivated member or a changed
			// role ends it (the client reconnects with what it may see now).
			if !s.stillAllowed(ctx, r, m) {
				return
			}
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
		case ev, ok := <-evs:
			if !ok {
				return // the broker stopped, or the token or member lost access
			}
			if ev.Seq <= replayedTo {
				continue // already replayed
			}
			if lagged {
				// The replay stopped short: what lies between it and
				// the subscription is lost to this client.
				ev.Lagged, lagged = true, false
			}
			buf.Reset()
			if err := writeEvent(&buf, ev); err != nil {
				s.log.Error("event stream: cannot encode an event", "request_id", reqID(r), "org", org.ID, "err", err)
				continue
			}
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writeEvent formats one event. JSON never contains a raw newline, so the
// data fits on one line.
func writeEvent(buf *bytes.Buffer, ev events.Event) error {
	b, err := json.Marshal(streamEvent{Seq: ev.Seq, Type: ev.Type, At: ev.At, Actor: ev.Actor, Subject: ev.Subject,
		Data: ev.Data, Lagged: ev.Lagged})
	if err != nil {
		return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
	}
	buf.WriteString("id: ")
	buf.WriteString(strconv.FormatInt(ev.Seq, 10))
	buf.WriteString("\nevent: ")
	buf.WriteString(string(ev.Type))
	buf.WriteString("\ndata: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	return nil
}

// stillAllowed re-reads, bypassing the cache, the token of a long-lived
// request and its member, and reports whether the member may still see
// what the stream was opened with.
func (s *server) stillAllowed(ctx context.Context, r *http.Request, was *margen.Member) bool {
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	t, err := s.store.TokenByHash(ctx, auth.HashToken(token))
	if err != nil || t.RevokedAt != nil || t.MemberID != was.ID {
		return false
	}
	m, err := s.store.MemberByID(ctx, t.OrgID, t.MemberID)
	return err == nil && m.Active && m.Access == was.Access && m.Role == was.Role && m.Team == was.Team
}
