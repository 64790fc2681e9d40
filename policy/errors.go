package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a policy document, with the 1-based line and
// column where it was found and the path of the offending element
// (for example "grants[2].when").
type Error struct {
	Line   int
	Column int
	Path   string
	Msg    string
	// Limit names the limit the document broke (LimitSize, LimitDepth,
	// ...), with its value in Max; "" for every other problem.
	Limit string
	Max   int
	// Format and Args are Msg before it was written in English
	// (Msg = fmt.Sprintf(Format, Args...), verbs %s, %q, %d and %v only), so
	// a reader can translate it; Format is "" for a message that has no
	// fixed wording (a condition's compiler error).
	Format string
	Args   []any
}

// newError is an Error whose message is format with args.
func newError(line, col int, path, format string, args ...any) Error {
	return Error{Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...), Format: format, Args: args}
}

// Error formats the problem as "line L, column C: path: message".
func (e Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a policy document, sorted by position.
// Parse returns it as its error.
type Errors []Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
}

// Request errors. Evaluate wraps them in a *RequestError; every one of them
// also matches ErrInvalidRequest with errors.Is, so a caller can map the
// whole family to HTTP 400 in one place.
var (
	// ErrInvalidRequest matches every error Evaluate returns.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnknownAction: the action is not in the policy's catalogue.
	ErrUnknownAction = errors.New("unknown action")
	// ErrNegativeAmount: the amount is below zero.
	ErrNegativeAmount = errors.New("negative amount")
	// ErrAmountTooLarge: the amount is above MaxAmount.
	ErrAmountTooLarge = errors.New("amount too large")
	// ErrNonMonetaryAmount: a non-monetary action was requested with an
	// amount other than zero.
	ErrNonMonetaryAmount = errors.New("non-monetary action with an amount")
	// ErrTooManyTags: more than MaxCustomerTags customer tags, or one
	// longer than MaxTagLen bytes.
	ErrTooManyTags = errors.New("too many or too long customer tags")
	// ErrZeroTime: the request has no decision time (Request.At).
	ErrZeroTime = errors.New("decision time is required")
	// ErrNilRequest: Evaluate was called with a nil request.
	ErrNilRequest = errors.New("nil request")
)

// RequestError says which request field made Evaluate refuse to decide.
type RequestError struct {
	Field string // "action", "amount" or "" for the request itself
	Err   error  // one of the Err* sentinels
}

// Error returns a message safe to show to an API client.
func (e *RequestError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

// Unwrap returns the sentinel.
func (e *RequestError) Unwrap() error { return e.Err }

// Is makes every RequestError match ErrInvalidRequest.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }
