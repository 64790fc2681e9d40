// Package web is margen's second door: server-rendered HTML pages for
// people (the counter today; the supervisor's inbox and the manager's desk
// are to come), beside the JSON API of package httpapi. The pages call the
// same services as the API (decision.Engine, approval.Service, the
// events.Broker, the Store) and the same rules (margen.SeesAll,
// margen.AccessAtLeast, approval.Service.Visible, decision.Words,
// decision.Next): they must never decide who may see or do something on
// their own, nor compute a verdict, an explanation or a budget themselves.
//
// What the package holds:
//
//   - web.go: Config, New and the route table (pattern, handler, least
//     access level); the middleware order (security headers, panics,
//     cross-origin protection, sessions, the signed-in member).
//   - middleware.go: sessions (scs, stored in the same database by package
//     store), the member and organisation of a request, the language of a
//     page, the Content-Security-Policy.
//   - render.go: templates, embedded and parsed once in New (a missing or
//     broken template fails the start), the page data every template gets
//     (.T for catalogue text, .Money, .Time, .Elapsed), error pages.
//   - assets.go: static files embedded, served gzip-compressed under
//     content-hashed URLs (/static/HASH/NAME) cached as immutable. Vendored
//     files come from npm through scripts/vendor-assets, with licences and
//     checksums; axe-core is in testdata (tests only, never served).
//   - account.go, throttle.go: first-run setup, sign-in (argon2id,
//     throttled per account and per address), sign-out, the account page,
//     the language switch.
//   - counter.go and templates/counter.html: the counter ("¿Puedo?").
//
// # Adding a page
//
//  1. Write templates/NAME.html with {{define "main"}}…{{end}} (the layout
//     wraps it); fragments for htmx are further {{define}} blocks in the
//     same file, rendered with s.render(w, r, status, "NAME", "block", p).
//     Every word shown goes through {{.T "area.key"}}: add the keys to
//     i18n/locales/<area>.es.json and .en.json (TestTemplatesUseTheCatalogue
//     fails on text outside the catalogue or a key missing in a language).
//  2. Add its routes to (*server).routes with the least access level that
//     may open them (margen.AccessFrontline, AccessSupervisor,
//     AccessManager); below it members get the 403 page.
//  3. Write a linear handler: s.form (bounded POST bodies), call the
//     service, then s.render or a redirect (post, redirect, get, so it works
//     without JavaScript; with htmx, answer a fragment when the request has
//     HX-Request). Unexpected errors go to s.fail (translated pages; details
//     only in the log).
//  4. No inline script or style (the CSP refuses them): behaviour is htmx
//     attributes, styling static/app.css on top of Pico (classless).
//  5. Test it over real HTTP on both engines (harness_test.go) and in the
//     browser (browser_test.go), with axe-core on the page.
//
// Sessions end on sign-out, after the idle and absolute timeouts, and as
// soon as the member's margen.MemberStamp changes (deactivated; access,
// role, team or password changed), whichever door made the change.
package web
