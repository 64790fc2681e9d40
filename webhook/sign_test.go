package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen/webhook"
)

// The Standard Webhooks reference vector.
const (
	refSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	refID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	refTS     = 1614265330
	refBody   = `{"test": 2432232314}`
	refSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignReference(t *testing.T) {
	sig, err := webhook.Sign(refSecret, refID, time.Unix(refTS, 0), []byte(refBody))
	if err != nil || sig != refSig {
		t.Fatalf("Sign = %q, %v; want %q", sig, err, refSig)
	}
}

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(refTS, 0)
	body := []byte(refBody)
	other := webhook.NewSecret()
	if !strings.HasPrefix(other, "whsec_") || len(other) != len("whsec_")+44 || other == webhook.NewSecret() {
		t.Fatalf("NewSecret = %q", other)
	}
	otherSig, _ := webhook.Sign(other, refID, now, body)
	for _, c := range []struct {
		name string
		h    http.Header
		body []byte
		now  time.Time
		want error
	}{
		{"valid", headers(refID, refTS, refSig), body, now, nil},
		{"one of several signatures", headers(refID, refTS, "v1,bm9wZQ== "+refSig), body, now, nil},
		{"within tolerance", headers(refID, refTS, refSig), body, now.Add(4 * time.Minute), nil},
		{"tampered body", headers(refID, refTS, refSig), []byte(`{"test": 2432232315}`), now, webhook.ErrInvalidSignature},
		{"other id", headers("msg_other", refTS, refSig), body, now, webhook.ErrInvalidSignature},
		{"other timestamp", headers(refID, refTS+1, refSig), body, now, webhook.ErrInvalidSignature},
		{"other secret", headers(refID, refTS, otherSig), body, now, webhook.ErrInvalidSignature},
		{"other version", headers(refID, refTS, "v2,"+strings.TrimPrefix(refSig, "v1,")), body, now, webhook.ErrInvalidSignature},
		{"malformed", headers(refID, refTS, "garbage"), body, now, webhook.ErrMalformedSignature},
		{"too old", headers(refID, refTS, refSig), body, now.Add(6 * time.Minute), webhook.ErrTimestampTooOld},
		{"too new", headers(refID, refTS, refSig), body, now.Add(-6 * time.Minute), webhook.ErrTimestampTooNew},
		{"bad timestamp", func() http.Header { h := headers(refID, 0, refSig); h.Set("webhook-timestamp", "soon"); return h }(), body, now, webhook.ErrInvalidTimestamp},
		{"missing", http.Header{}, body, now, webhook.ErrMissingHeaders},
	} {
		if err := webhook.Verify(refSecret, c.h, c.body, c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
	if err := webhook.Verify("whsec_%%%", headers(refID, refTS, refSig), body, now, 0); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Errorf("bad secret: %v", err)
	}
	if _, err := webhook.Sign("whsec_", refID, now, body); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Errorf("empty key: %v", err)
	}
}
