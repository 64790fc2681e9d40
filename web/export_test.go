package web

import "time"

// SetInboxSLATick shortens how often an open inbox rewrites the time left,
// until the test ends.
func SetInboxSLATick(cleanup func(func()), d time.Duration) {
	old := inboxSLATick.Swap(int64(d))
	cleanup(func() { inboxSLATick.Store(old) })
}
