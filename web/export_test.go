package web

import "time"

// SetInboxSLATick shortens how often an open inbox rewrites the time left,
// until the test ends.
func SetInboxSLATick(cleanup func(func()), d time.Duration) {
	old := inboxSLATick.Swap(int64(d))
	cleanup(func() { inboxSLATick.Store(old) })
}

// Route is one entry of the page route table: its pattern ("GET /x/{id}")
// and the least access level that may call it ("" for public routes).
type Route struct{ Pattern, Access string }

// Routes is the route table New mounts, so a test can cover every page
// without listing them (a page added later is covered too).
func Routes() []Route {
	s := &server{assets: &assets{}}
	var out []Route
	for _, rt := range s.routes() {
		out = append(out, Route{rt.pattern, rt.minAccess})
	}
	return out
}
