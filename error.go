package margen

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in exactly one place (httpapi).
const (
	EINVALID      = "invalid"       // the request is malformed or breaks a rule (400)
	EUNAUTHORIZED = "unauthorized"  // no valid credentials (401)
	EFORBIDDEN    = "forbidden"     // authenticated, but the role may not do this (403)
	ENOTFOUND     = "not_found"     // missing, or belongs to another organisation (404)
	ECONFLICT     = "conflict"      // clashes with the current state, e.g. a duplicate in flight (409)
	ETOOLARGE     = "too_large"     // the body is over the size limit (413)
	EMISMATCH     = "unprocessable" // an idempotency key reused with another body (422)
	EINTERNAL     = "internal"      // a bug or an outage; details are logged, never shown (500)
	EUNAVAILABLE  = "unavailable"   // shutting down or overloaded (503)
	EBUSY         = "busy"          // no database connection free in time; retry after a moment (503 with Retry-After)
	ETOOMANY      = "too_many"      // over a limit of concurrent use, e.g. event streams (429 with Retry-After)
)

// Error codes of the edge's limits.
const (
	EMEDIATYPE = "unsupported_media_type" // the body is not of the type the route reads (415)
	ERATELIMIT = "rate_limited"           // too many requests from one token or address (429)
)

// Error is the one error type that crosses package boundaries with meaning for
// the user. Key names a message in the catalogue; Args fill it in. Field, when
// set, names the input at fault. Err keeps the internal cause for the logs.
type Error struct {
	Code  string
	Key   string
	Args  map[string]any
	Field string
	Err   error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Key
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if len(e.Args) > 0 {
		s += fmt.Sprintf(" %v", e.Args)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a catalogue key and optional key/value args.
func Errorf(code, key string, kv ...any) *Error {
	e := &Error{Code: code, Key: key}
	if len(kv) > 0 {
		e.Args = make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			e.Args[fmt.Sprint(kv[i])] = kv[i+1]
		}
	}
	return e
}

// Invalid is shorthand for an EINVALID error about one input field.
func Invalid(field, key string, kv ...any) *Error {
	e := Errorf(EINVALID, key, kv...)
	e.Field = field
	return e
}

// NotFound is the answer for any missing id, including ids of other
// organisations: the two must be indistinguishable.
func NotFound(what string) *Error {
	return Errorf(ENOTFOUND, "error.not_found", "what", what)
}

// ErrorCode returns the code of err, or EINTERNAL for errors that carry none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool {
	return err != nil && ErrorCode(err) == code
}
