package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/margenhq/margen"
)

// Limits on the strings of a request outside its body. Ids are short
// ("dec_" and 32 hex digits); filters name ids, actions, customer
// references and times; the policy note is a sentence.
const (
	maxPathValue  = 200
	maxQueryKey   = 64
	maxQueryValue = 200
	maxQueryNote  = maxNote
	maxRawQuery   = 8 << 10
	// maxJSONString bounds one string of a JSON body; each field has its
	// own, smaller limit where it is used.
	maxJSONString = 8 << 10
)

// freeTextQuery names the query parameters that are free text (tabs and
// line breaks allowed) and their length limits.
var freeTextQuery = map[string]int{"note": maxQueryNote}

// checkedHeaders are the request headers margen reads, with the limits of
// their meaning (0: none here; every header's size is bounded by
// headerLimits, which answers 431).
// X-Request-Id is not here: one that is not a plain token is replaced by a
// fresh id (see requestID), never refused, since a proxy sets it.
var checkedHeaders = []struct {
	name string
	max  int
}{
	{"Idempotency-Key", maxIdemKey},
	{"Last-Event-ID", 64},
	{"Accept-Language", 0},
	{"Authorization", 0},
}

// checkInput refuses a request whose path values, query string or headers
// margen reads hold anything but valid, bounded, single-line UTF-8 text
// (see margen.CheckText), before it reaches a handler. It is the one place
// these inputs are checked; JSON bodies are checked where they are decoded
// (decodeStrict). pattern is the route's ServeMux pattern, whose wildcards
// it checks.
func (s *server) checkInput(pattern string, next http.Handler) http.Handler {
	wildcards := patternWildcards(pattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkRequestInput(r, wildcards); err != nil {
			s.problem(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func checkRequestInput(r *http.Request, wildcards []string) error {
	for _, h := range checkedHeaders {
		vs := r.Header.Values(h.name)
		for _, v := range vs {
			if err := margen.CheckText(h.name, v, h.max, margen.TextLine); err != nil {
				return err
			}
		}
	}
	for _, name := range wildcards {
		if err := margen.CheckText(name, r.PathValue(name), maxPathValue, margen.TextLine); err != nil {
			return err
		}
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	if len(r.URL.RawQuery) > maxRawQuery {
		return margen.Invalid("query", "error.too_long", "field", "query", "max", maxRawQuery)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return margen.Invalid("query", "error.query_syntax", "detail", err.Error())
	}
	for k, vs := range q {
		if err := margen.CheckText("query", k, maxQueryKey, margen.TextLine); err != nil {
			return err
		}
		max, multiline := maxQueryValue, margen.TextLine
		if n, ok := freeTextQuery[k]; ok {
			max, multiline = n, margen.TextBlock
		}
		for _, v := range vs {
			if err := margen.CheckText(k, v, max, multiline); err != nil {
				return err
			}
		}
	}
	return nil
}

// patternWildcards returns the names of a pattern's {wildcards}.
func patternWildcards(pattern string) []string {
	var out []string
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, strings.TrimSuffix(pattern[i+1:i+j], "..."))
		pattern = pattern[i+j+1:]
	}
}
