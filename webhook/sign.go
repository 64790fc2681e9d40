package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// Header names of the Standard Webhooks scheme.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Verification errors.
var (
	ErrInvalidSecret      = errors.New("webhook: invalid secret")
	ErrMissingHeaders     = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp   = errors.New("webhook: invalid timestamp")
	ErrTimestampTooOld    = errors.New("webhook: timestamp too old")
	ErrTimestampTooNew    = errors.New("webhook: timestamp too new")
	ErrInvalidSignature   = errors.New("webhook: no matching signature")
	ErrMalformedSignature = errors.New("webhook: malformed signature header")
)

// NewSecret returns a new signing secret: "whsec_" + base64 of 32 random
// bytes.
func NewSecret() string {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic("webhook: no randomness: " + err.Error()) // crypto/rand never fails on supported systems
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(k[:])
}

// key decodes a secret's key (the part after "whsec_").
func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, ErrInvalidSecret
	}
	return k, nil
}

func mac(k []byte, msgID string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, k)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, msgID + "." + unix(ts) + "." + body)).
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(k, msgID, ts.Unix(), body)), nil
}

// Verify checks a received webhook: the three headers are present, the
// timestamp is within tolerance of now (either way, against replays), and
// one of the space-separated v1 signatures matches (compared in constant
// time). tolerance <= 0 means 5 minutes.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	k, err := key(secret)
	if err != nil {
		return err
	}
	id, tsHeader, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsHeader == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	at := time.Unix(ts, 0)
	switch {
	case now.Sub(at) > tolerance:
		return ErrTimestampTooOld
	case at.Sub(now) > tolerance:
		return ErrTimestampTooNew
	}
	want := mac(k, id, ts, body)
	malformed := true
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok {
			continue
		}
		malformed = false
		if version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if malformed {
		return ErrMalformedSignature
	}
	return ErrInvalidSignature
}
