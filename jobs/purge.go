package jobs

import (
	"context"
	"time"
)

// Purger is what the purge job asks of the store (margen.Store has it).
type Purger interface {
	PurgeIdempotency(ctx context.Context, now time.Time, limit int) (int, error)
	PurgeJobs(ctx context.Context, before time.Time, limit int) (int, error)
}

// purgeBatch bounds each delete, so the purge never holds the writer long.
const purgeBatch = 1000

// Purge is the periodic kind (margen.JobPurge) that deletes the idempotency
// records expired at the attempt's time and the jobs done or cancelled more
// than keep ago, in batches, every period. Dead jobs stay for inspection.
func Purge(st Purger, keep, every time.Duration) Kind {
	return Kind{Every: every, Handler: func(ctx context.Context, a *Attempt) error {
		for {
			n, err := st.PurgeIdempotency(ctx, a.Now, purgeBatch)
			if err != nil {
				return err
			}
			if n < purgeBatch {
				break
			}
		}
		for {
			n, err := st.PurgeJobs(ctx, a.Now.Add(-keep), purgeBatch)
			if err != nil {
				return err
			}
			if n < purgeBatch {
				return nil
			}
		}
	}}
}
