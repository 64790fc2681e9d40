package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/store/storetest"
)

// TestConcurrentPublishReplays: concurrent policy publishes through two
// servers on two store handles of one database (as two processes on one
// PostgreSQL), each with its own Idempotency-Key; every replay, on either
// server, answers byte for byte what its first answer said, and the
// versions are 2..n+1, each named once.
func TestConcurrentPublishReplays(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			dsn := eng.DSN(t)
			e := setup(t, storetest.OpenDSN(t, dsn))
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			cat, err := i18n.New()
			if err != nil {
				t.Fatal(err)
			}
			db2 := storetest.OpenDSN(t, dsn)
			eng2 := decision.New(db2, decision.Options{Logger: log})
			t.Cleanup(eng2.Close)
			h2, err := httpapi.New(httpapi.Config{Store: db2, Engine: eng2, Catalog: cat, Logger: log, Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			srv2 := httptest.NewServer(h2)
			t.Cleanup(srv2.Close)
			servers := []string{e.srv.URL, srv2.URL}

			src := restaurantPolicy(t)
			publish := func(base, key string) (int, []byte) {
				req, err := http.NewRequest("POST", base+"/api/v1/policies", bytes.NewReader(src))
				if err != nil {
					t.Error(err)
					return 0, nil
				}
				req.Header.Set("Authorization", "Bearer "+e.tok["olga"])
				req.Header.Set("Content-Type", "application/yaml")
				req.Header.Set("Idempotency-Key", key)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return 0, nil
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, b
			}
			const n = 10
			first := make([][]byte, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status, body := publish(servers[i%2], fmt.Sprintf("pub-%d", i))
					if status != http.StatusCreated {
						t.Errorf("publish %d: %d %s", i, status, body)
					}
					first[i] = body
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			var versions []int
			for i := range n {
				var v struct{ Version int }
				decodeBytes(t, first[i], &v)
				versions = append(versions, v.Version)
				for _, base := range servers {
					status, body := publish(base, fmt.Sprintf("pub-%d", i))
					if status != http.StatusCreated || !bytes.Equal(body, first[i]) {
						t.Errorf("replay of publish %d: %d %s, first answer %s", i, status, body, first[i])
					}
				}
			}
			slices.Sort(versions)
			for i, v := range versions {
				if v != i+2 { // version 1 is setup's
					t.Fatalf("versions %v, want 2..%d once each", versions, n+1)
				}
			}
		})
	}
}

func decodeBytes(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
