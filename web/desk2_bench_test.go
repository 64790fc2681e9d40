package web_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/margenhq/margen/demo"
	"github.com/margenhq/margen/store/storetest"
)

// BenchmarkDeskPages serves the manager's desk pages of desk2 over real
// HTTP (loopback, the client on the same cores) with the demo loaded, its
// 90 days of history ending tomorrow so today is full too, and reports the
// 50th and 99th percentile of each request's time as the client sees it:
// an upper bound of the server time.
//
//	MARGEN_TEST_POSTGRES=... go test -run '^$' -bench DeskPages -benchtime 400x ./web/
func BenchmarkDeskPages(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			db := e.Open(b)
			s := newSite(b, db, true)
			res, err := demo.Load(context.Background(), db, demo.Options{Now: time.Now().AddDate(0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			c := s.client(b)
			c.signin(demo.AdminLogin, res.AdminPassword)
			for _, path := range []string{"/desk/today", "/desk/audit", "/desk/audit?action=decision.create", "/desk/audit?action=policy.publish", "/desk/webhooks"} {
				b.Run(path, func(b *testing.B) {
					times := make([]time.Duration, 0, b.N)
					for b.Loop() {
						start := time.Now()
						r, body := c.do("GET", path, nil)
						times = append(times, time.Since(start))
						if r.StatusCode != http.StatusOK {
							b.Fatalf("%s: %d %s", path, r.StatusCode, body)
						}
					}
					slices.Sort(times)
					b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
				})
			}
		})
	}
}
