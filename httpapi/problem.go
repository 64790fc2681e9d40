package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// status maps an error code to its HTTP status. This is the one place.
func status(code string) int {
	switch code {
	case margen.EINVALID:
		return http.StatusBadRequest
	case margen.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case margen.EFORBIDDEN:
		return http.StatusForbidden
	case margen.ENOTFOUND:
		return http.StatusNotFound
	case margen.ECONFLICT:
		return http.StatusConflict
	case margen.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case margen.EMISMATCH:
		return http.StatusUnprocessableEntity
	case margen.EMEDIATYPE:
		return http.StatusUnsupportedMediaType
	case margen.ERATELIMIT:
		return http.StatusTooManyRequests
	case margen.EUNAVAILABLE, margen.EBUSY:
		return http.StatusServiceUnavailable
	case margen.ETOOMANY:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// retryAfter is the Retry-After (seconds) of answers the client should
// simply retry: a database with no free connection clears in a moment; a
// limit of concurrent streams or a service restarting, in a few seconds.
func retryAfter(code string) string {
	switch code {
	case margen.EBUSY:
		return "1"
	case margen.ETOOMANY, margen.EUNAVAILABLE:
		return "5"
	}
	return ""
}

// Problem is an RFC 9457 problem document with margen's extensions: the
// error code, the catalogue key, the input at fault and, for a policy, every
// problem found in it.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail"`
	Code      string         `json:"code"`
	Key       string         `json:"key"`
	Field     string         `json:"field,omitempty"`
	Errors    []ProblemError `json:"errors,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	// Report is the import report of a file refused as a whole.
	Report any `json:"report,omitempty"`
}

// ProblemError is one problem in a submitted document (a policy): where it
// is and what is wrong, and the limit it broke if that is the problem.
type ProblemError struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Limit   string `json:"limit,omitempty"`
	Max     *int   `json:"max,omitempty"`
}

// detailedError carries a list of document problems along with its
// margen.Error; problem() puts them in the "errors" member.
type detailedError struct {
	err    *margen.Error
	list   []ProblemError
	report any // an import report, or nil
}

func (e *detailedError) Error() string { return e.err.Error() }
func (e *detailedError) Unwrap() error { return e.err }

// problem answers err as a problem document.
func (s *server) problem(w http.ResponseWriter, r *http.Request, err error) {
	var e *margen.Error
	if !errors.As(err, &e) {
		e = &margen.Error{Code: margen.EINTERNAL, Key: "error.internal", Err: err}
		if errors.Is(err, context.Canceled) {
			// The client went away; nobody reads this answer.
			e.Code, e.Key = margen.EUNAVAILABLE, "error.unavailable"
		}
	}
	s.problemStatus(w, r, status(e.Code), err)
}

func (s *server) problemStatus(w http.ResponseWriter, r *http.Request, code int, err error) {
	var e *margen.Error
	if !errors.As(err, &e) || code == http.StatusInternalServerError {
		// Never show internal text: log it, answer with the request id.
		s.log.Error("internal error", "request_id", reqID(r), "method", r.Method, "path", r.URL.Path, "err", err)
		e = &margen.Error{Code: margen.EINTERNAL, Key: "error.internal"}
	}
	p := Problem{
		Type:      "urn:margen:problem:" + strings.TrimPrefix(e.Key, "error."),
		Title:     http.StatusText(code),
		Status:    code,
		Code:      e.Code,
		Key:       e.Key,
		Field:     e.Field,
		RequestID: reqID(r),
	}
	args := e.Args
	if e.Key == "error.internal" {
		args = map[string]any{"request_id": reqID(r)}
	}
	cur := ""
	if st := state(r); st.org != nil {
		cur = st.org.Currency
	}
	p.Detail = s.cat.Format(lang(r), cur, e.Key, args)
	var de *detailedError
	if errors.As(err, &de) {
		p.Errors = de.list
		p.Report = de.report
	}
	var pe policy.Errors
	if errors.As(err, &pe) {
		for _, x := range pe {
			pe := ProblemError{Line: x.Line, Column: x.Column, Path: x.Path, Message: x.Msg, Limit: x.Limit}
			if x.Limit != "" {
				pe.Max = &x.Max
			}
			p.Errors = append(p.Errors, pe)
		}
	}
	if ra := retryAfter(e.Code); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	if code == http.StatusUnauthorized {
		v := `Bearer realm="margen"`
		if r.Header.Get("Authorization") != "" {
			v += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	b, merr := json.Marshal(p)
	if merr != nil {
		b = []byte(`{"status":500,"title":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	w.Write(b)
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Our own types always marshal; a failure is a bug.
		http.Error(w, `{"status":500}`, http.StatusInternalServerError)
		return
	}
	writeRaw(w, code, b)
}

func writeRaw(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte{'\n'})
}
