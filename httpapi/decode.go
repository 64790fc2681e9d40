package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
)

// readBody reads a request body of at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, margen.Errorf(margen.ETOOLARGE, "error.body_too_large", "max", max)
	}
	if err != nil {
		return nil, margen.Errorf(margen.EINVALID, "error.body_empty")
	}
	return body, nil
}

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]*)"`)

// decodeStrict decodes one JSON object into v: unknown fields, syntax
// errors, wrong types, trailing data and strings that are not valid text
// (see margen.CheckJSONText) are refused with the position or field at
// fault.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return margen.Errorf(margen.EINVALID, "error.body_empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return margen.Errorf(margen.EINVALID, "error.trailing_data")
	}
	// Every string of every JSON body: valid UTF-8, no NUL or control
	// characters, bounded. encoding/json would have turned invalid UTF-8
	// into U+FFFD and kept "\u0000", so the raw body is read.
	return margen.CheckJSONText("", body, maxJSONString)
}

func jsonError(body []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := position(body, se.Offset)
		return margen.Errorf(margen.EINVALID, "error.json_syntax", "line", line, "column", col, "offset", se.Offset, "detail", se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		line, col := position(body, int64(len(body)))
		return margen.Errorf(margen.EINVALID, "error.json_syntax", "line", line, "column", col, "offset", len(body), "detail", "unexpected end of JSON input")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		e := margen.Invalid(field, "error.json_type", "field", field, "expected", jsonType(te.Type.Kind().String()))
		return e
	}
	if m := unknownFieldRe.FindStringSubmatch(err.Error()); m != nil {
		return margen.Invalid(m[1], "error.unknown_field", "field", m[1])
	}
	line, col := position(body, int64(len(body)))
	return margen.Errorf(margen.EINVALID, "error.json_syntax", "line", line, "column", col, "offset", len(body), "detail", "invalid JSON")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "number"
}

// position turns a byte offset into a 1-based line and column.
func position(body []byte, offset int64) (line, col int) {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	if offset < 0 {
		offset = 0
	}
	before := body[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	if col < 1 {
		col = 1
	}
	return line, col
}

// decisionBody is the JSON body of POST /api/v1/decisions.
type decisionBody struct {
	Action   string                 `json:"action"`
	Amount   json.RawMessage        `json:"amount"`
	Currency string                 `json:"currency"`
	Customer decision.CustomerInput `json:"customer"`
	Reason   string                 `json:"reason"`
	Context  json.RawMessage        `json:"context"`
	// AfterTheFact reports an act already done at the counter.
	AfterTheFact bool `json:"after_the_fact"`
}

// decisionInput is a decoded decision request with a valid shape: an
// action, a customer reference, an integer amount in [0, MaxAmount] and a
// context that is absent or a JSON object. Policy-specific checks (is the
// action known, is the currency the organisation's) are the engine's.
type decisionInput struct {
	Action   string
	Amount   int64
	Currency string
	Customer decision.CustomerInput
	Reason   string
	Context  json.RawMessage
	// AfterTheFact: see decision.Request.AfterTheFact.
	AfterTheFact bool
}

func decodeDecision(body []byte) (decisionInput, error) {
	var b decisionBody
	if err := decodeStrict(body, &b); err != nil {
		return decisionInput{}, err
	}
	in := decisionInput{Action: b.Action, Currency: b.Currency, Customer: b.Customer, Reason: b.Reason, AfterTheFact: b.AfterTheFact}
	if in.Action == "" {
		return in, margen.Invalid("action", "error.required", "field", "action")
	}
	if in.Customer.Ref == "" {
		return in, margen.Invalid("customer.ref", "error.required", "field", "customer.ref")
	}
	amount, err := parseAmount(b.Amount)
	if err != nil {
		return in, err
	}
	in.Amount = amount
	ctx := bytes.TrimSpace(b.Context)
	if len(ctx) > 0 && !bytes.Equal(ctx, []byte("null")) {
		if ctx[0] != '{' {
			return in, margen.Invalid("context", "error.context_object")
		}
		in.Context = json.RawMessage(ctx)
	}
	return in, nil
}

// parseAmount accepts a JSON integer literal between 0 and
// decision.MaxAmount; absent or null means 0. Strings, fractions and
// exponents are refused: amounts are integer minor units, never floats.
func parseAmount(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	s := string(raw)
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" {
		return 0, margen.Invalid("amount", "error.amount_integer")
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, margen.Invalid("amount", "error.amount_integer")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil && s[0] == '-':
		return 0, margen.Invalid("amount", "error.amount_negative")
	case err != nil:
		return 0, margen.Invalid("amount", "error.amount_too_large", "max", int64(decision.MaxAmount))
	case n < 0:
		return 0, margen.Invalid("amount", "error.amount_negative")
	case n > decision.MaxAmount:
		return 0, margen.Invalid("amount", "error.amount_too_large", "max", int64(decision.MaxAmount))
	}
	return n, nil
}

// readJSON reads a JSON body of at most maxJSONBody bytes into v, strictly
// (see decodeStrict), answering the problem itself when it fails. It returns
// the raw body, which idempotency fingerprints, and whether to go on.
func (s *server) readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := readBody(w, r, maxJSONBody)
	if err == nil {
		err = decodeStrict(body, v)
	}
	if err != nil {
		s.problem(w, r, err)
		return nil, false
	}
	return body, true
}
