package decision_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// benchPolicy gives a large daily budget per member and per customer so a
// benchmark measures recording, not refusals.
var benchPolicy = strings.NewReplacer(
	"limit: 10000", "limit: 1000000000000",
	"max_amount: 100\n", "max_amount: 100000\n",
).Replace(testPolicy)

// BenchmarkDecide measures durable decisions through the engine (group
// commit, no HTTP) with 64 concurrent callers per core. "spread" spreads
// the load over 1,000 customers; "hot" sends it all to one member's budget.
func BenchmarkDecide(b *testing.B) {
	for _, e := range engines(b) {
		for _, shape := range []string{"spread", "hot"} {
			b.Run(e.name+"/"+shape, func(b *testing.B) {
				f := setup(b, e.open, benchPolicy)
				ctx := context.Background()
				var n atomic.Int64
				b.SetParallelism(64)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						ref := "hot"
						if shape == "spread" {
							ref = fmt.Sprintf("c%d", i%1000)
						}
						if _, err := f.eng.Decide(ctx, f.req("courtesy_gift", 100, ref)); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
				b.StopTimer()
				checkLedger(b, f)
			})
		}
	}
}
