package webhook

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPublicOnly(t *testing.T) {
	for addr, allowed := range map[string]bool{
		"127.0.0.1:443":       false,
		"[::1]:443":           false,
		"10.1.2.3:443":        false,
		"172.16.0.1:443":      false,
		"192.168.1.10:443":    false,
		"169.254.169.254:80":  false, // cloud metadata
		"100.64.0.1:443":      false,
		"0.0.0.0:443":         false,
		"[fe80::1]:443":       false,
		"[fd00::1]:443":       false,
		"[::ffff:10.0.0.1]:1": false,
		"8.8.8.8:443":         true,
		"[2001:4860::8888]:1": true,
	} {
		err := publicOnly("tcp", addr, nil)
		if (err == nil) != allowed {
			t.Errorf("%s: err = %v, want allowed=%v", addr, err, allowed)
		}
	}
}

func TestDefaultClientRefusesLoopback(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, err := newClient(time.Second, false).Post(srv.URL, "application/json", nil)
	if !errors.Is(err, errPrivateAddress) || hits.Load() != 0 {
		t.Fatalf("delivery to loopback: err = %v, hits = %d; want refused before connecting", err, hits.Load())
	}
	resp, err := newClient(time.Second, true).Post(srv.URL, "application/json", nil)
	if err != nil || hits.Load() != 1 {
		t.Fatalf("with AllowPrivate: %v, hits = %d", err, hits.Load())
	}
	resp.Body.Close()
}
