package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/demo"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// maxCounterWeight is the budget of the counter's first load: the page and
// every asset it names, as a browser receives them (assets gzip-compressed).
const maxCounterWeight = 100 << 10

var assetURL = regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`)

// TestCounterWeight: the counter's first load, assets included, is at most
// 100 KB on the wire; the assets are served compressed, cached as
// immutable, and a stale hash is not served.
func TestCounterWeight(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		c := s.client(t)
		c.signin("camila", s.Pass["camila"])
		res, page := c.do("GET", "/counter", nil, "Accept-Encoding", "gzip")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("counter: %d", res.StatusCode)
		}
		total := len(page)
		urls := assetURL.FindAllStringSubmatch(page, -1)
		if len(urls) != 4 {
			t.Fatalf("the counter names %d assets, want 4 (pico, app.css, htmx, sse)", len(urls))
		}
		for _, m := range urls {
			req, _ := http.NewRequest("GET", s.URL+m[1], nil)
			req.Header.Set("Accept-Encoding", "gzip") // set by hand: the transport then does not decompress
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "gzip" ||
				!strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
				t.Fatalf("%s: %d, encoding %q, cache %q", m[1], res.StatusCode, res.Header.Get("Content-Encoding"), res.Header.Get("Cache-Control"))
			}
			t.Logf("%s: %d bytes", m[1], len(b))
			total += len(b)
		}
		t.Logf("counter first load: %d bytes (page %d)", total, len(page))
		if total > maxCounterWeight {
			t.Fatalf("the counter's first load is %d bytes, over %d", total, maxCounterWeight)
		}
		stale := regexp.MustCompile(`/static/[0-9a-f]+/`).ReplaceAllString(urls[0][1], "/static/000000000000/")
		if res, _ := c.do("GET", stale, nil); res.StatusCode != http.StatusNotFound {
			t.Fatalf("a stale asset URL: %d, want 404", res.StatusCode)
		}
	})
}

// BenchmarkCounterPage measures the server time of the counter page for a
// waiter of the demo organisation (90 days of history loaded), without
// the network, and reports its 99th percentile.
//
//	go test ./web/ -run '^$' -bench CounterPage -benchtime 2000x
func BenchmarkCounterPage(b *testing.B) {
	ctx := context.Background()
	db := storetest.OpenSQLite(b)
	if _, err := demo.Load(ctx, db, demo.Options{}); err != nil {
		b.Fatal(err)
	}
	s := newSite(b, db, true)
	org, err := db.OrgBySlug(ctx, demo.Slug)
	if err != nil {
		b.Fatal(err)
	}
	m, err := db.MemberByLogin(ctx, org.ID, "camila")
	if err != nil {
		b.Fatal(err)
	}
	hash, _ := auth.HashPassword("camila-benchmark")
	if err := db.SetMemberPassword(ctx, org.ID, m.ID, hash, "bench"); err != nil {
		b.Fatal(err)
	}
	c := s.client(b)
	res, body := c.do("POST", "/signin", url.Values{"org": {demo.Slug}, "login": {"camila"}, "password": {"camila-benchmark"}})
	if res.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign in: %d %s", res.StatusCode, body)
	}
	cookie := "margen_session=" + c.cookie("margen_session")
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/counter", nil)
		req.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		start := time.Now()
		s.h.ServeHTTP(w, req)
		times = append(times, time.Since(start))
		if w.Code != http.StatusOK {
			b.Fatalf("counter: %d", w.Code)
		}
	}
	b.StopTimer()
	slices.Sort(times)
	p := func(q float64) float64 { return float64(times[int(q*float64(len(times)-1))]) / 1e6 }
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}
