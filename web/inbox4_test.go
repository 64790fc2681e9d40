package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// TestInboxActivityPages: the activity shows its newest 20 rows and links
// to the older ones, keeping the filter; following the links lists every
// act and refusal once, in the activity's order, even when a screen ends
// among rows of the same microsecond, acts and refusals mixed. A cursor
// that is not one is refused beside the filter (400), whatever it holds.
func TestInboxActivityPages(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newSite(t, db, false)
		camila := s.Org.Members["camila"]
		for i := range 12 {
			s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 5000 + i,
				"customer": map[string]any{"ref": fmt.Sprintf("mesa-%d", i), "name": fmt.Sprintf("Mesa %d", i)}})
		}
		acts, err := db.ListActs(ctx, s.Org.ID, margen.ActFilter{Page: margen.Page{Limit: 100}})
		if err != nil || len(acts) != 12 {
			t.Fatalf("acts: %d, %v", len(acts), err)
		}
		// Eleven refusals at the newest act's microsecond, eleven at the
		// seventh newest's: the first screen ends among the second ones.
		type row struct {
			at  time.Time
			id  string
			key string // what the page shows of it: the act's link, the refusal's wish
		}
		var want []row
		for _, a := range acts {
			want = append(want, row{a.CreatedAt, a.ID, "/acts/" + a.ID})
		}
		for i := range 22 {
			at := acts[0].CreatedAt
			if i >= 11 {
				at = acts[6].CreatedAt
			}
			r := &margen.Refusal{OrgID: s.Org.ID, MemberID: camila.ID, Action: "reembolso", Wanted: fmt.Sprintf("quería %02d", i),
				ReasonKind: margen.RefusalNoRule, Left: margen.LeftUnhappy, CreatedAt: at}
			if err := db.RecordRefusal(ctx, r, nil, nil); err != nil {
				t.Fatal(err)
			}
			want = append(want, row{at, r.ID, r.Wanted})
		}
		slices.SortFunc(want, func(a, b row) int {
			if c := b.at.Compare(a.at); c != 0 {
				return c
			}
			return strings.Compare(b.id, a.id)
		})
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		rowKey := regexp.MustCompile(`<tr class="(?:act|refusal)">\n<td>[^<]*</td><td>[^<]*</td><td>[^<]*(?:<br><small>([^<]*)</small>)?</td>.*\n<td>(?:<a href="(/acts/[^"]+)">)?`)
		older := regexp.MustCompile(`<a href="([^"]+)" rel="next">Ver anteriores</a>`)
		// follow lists the rows of path's screen and of every older one.
		follow := func(path string) (keys []string, screens []string) {
			t.Helper()
			for path != "" {
				if len(screens) > 5 {
					t.Fatalf("the older links do not end: %v", screens)
				}
				res, body := m.do("GET", path, nil)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d\n%s", path, res.StatusCode, body)
				}
				rows := rowKey.FindAllStringSubmatch(body, -1)
				if n := strings.Count(body, `<tr class="`); n != len(rows) || n > 20 {
					t.Fatalf("GET %s: %d rows, %d read\n%s", path, n, len(rows), body)
				}
				for _, r := range rows {
					keys = append(keys, html.UnescapeString(r[1]+r[2]))
				}
				screens = append(screens, path)
				path = ""
				if l := older.FindStringSubmatch(body); l != nil {
					path = html.UnescapeString(l[1])
					if !strings.Contains(body, `Ver las más recientes`) && len(screens) > 1 {
						t.Errorf("GET %s: no link back to the newest rows", screens[len(screens)-1])
					}
				}
			}
			return keys, screens
		}
		keys, screens := follow("/inbox")
		var wantKeys []string
		for _, r := range want {
			wantKeys = append(wantKeys, r.key)
		}
		if len(screens) != 2 || !slices.Equal(keys, wantKeys) {
			t.Fatalf("%d screens %v\n got %q\nwant %q", len(screens), screens, keys, wantKeys)
		}
		// The filter is kept: the refusals alone, 22 of them.
		keys, screens = follow("/inbox?outcome=refusal&member=" + camila.ID)
		var refusals []string
		for _, k := range wantKeys {
			if !strings.HasPrefix(k, "/acts/") {
				refusals = append(refusals, k)
			}
		}
		if len(screens) != 2 || !slices.Equal(keys, refusals) {
			t.Fatalf("refusals: %d screens %v\n got %q\nwant %q", len(screens), screens, keys, refusals)
		}
		if u, _ := url.Parse(screens[1]); u.Query().Get("outcome") != "refusal" || u.Query().Get("member") != camila.ID ||
			u.Query().Get("before") == "" {
			t.Errorf("the older link %s does not keep the filter", screens[1])
		}
		// A well-formed cursor before every row: an empty screen.
		if res, body := m.do("GET", "/inbox?before=1.act_0", nil); res.StatusCode != http.StatusOK ||
			strings.Contains(body, `<tr class="`) || strings.Contains(body, "Ver anteriores") {
			t.Errorf("before everything: %d\n%s", res.StatusCode, body)
		}
		for _, bad := range []string{"x", "1", ".act_1", "1.", "-5.act_1", "+5.act_1", "12345678901234567.act_1", "1.act_1'--",
			"1.act_1%00", "1.act_1.2", "1.act<1>", "1." + strings.Repeat("a", 81), strings.Repeat("9", 5000)} {
			res, body := m.do("GET", "/inbox?before="+url.QueryEscape(bad), nil)
			if res.StatusCode != http.StatusBadRequest ||
				!strings.Contains(body, `<p id="f-before-error" class="error" role="alert">Este enlace a filas anteriores no es válido`) ||
				strings.Contains(body, `<tr class="`) || strings.Contains(body, "Ver anteriores") {
				t.Errorf("before=%.40q: %d\n%s", bad, res.StatusCode, body)
			}
		}
		// The refused link's message sends to the newest rows: they are
		// linked, with the filter kept.
		res, body := m.do("GET", "/inbox?outcome=refusal&before=x", nil)
		if res.StatusCode != http.StatusBadRequest ||
			!strings.Contains(body, `<a href="/inbox?outcome=refusal#activity-heading">Ver las más recientes</a>`) {
			t.Errorf("a refused cursor links no way back: %d\n%s", res.StatusCode, body)
		}
	})
}
