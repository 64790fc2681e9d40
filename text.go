package margen

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Text kinds: what a stored string may hold besides printable characters.
const (
	// TextLine is an identifier, a reference, a key, a name or a filter:
	// no control character at all.
	TextLine = false
	// TextBlock is free text written by a person (a reason, a note, a
	// policy document): tabs and line breaks are allowed.
	TextBlock = true
)

// TextProblem says what is wrong with s as text: "" when it is valid UTF-8
// without NUL or control characters (tab, line feed and carriage return are
// allowed when multiline), "encoding" for invalid UTF-8 and "control" for a
// control character (C0, DEL or C1). PostgreSQL refuses NUL and invalid
// UTF-8 in text (SQLSTATE 22021) and in jsonb (22P05); the other control
// characters are refused because no field of margen means them and they
// hide in logs and screens.
func TextProblem(s string, multiline bool) string {
	return textProblem(unsafe.Slice(unsafe.StringData(s), len(s)), multiline)
}

// textProblem is TextProblem over bytes (s is only read).
func textProblem(s []byte, multiline bool) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && !(multiline && (c == '\t' || c == '\n' || c == '\r')) || c == 0x7f {
				return "control"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "encoding"
		}
		if r >= 0x80 && r <= 0x9f {
			return "control"
		}
		i += size
	}
	return ""
}

// hasControlEscape reports whether raw JSON may hold a \u escape of a
// control character (it may be a false alarm, e.g. an escaped backslash
// followed by "u0000": the caller then looks closer).
func hasControlEscape(raw []byte) bool {
	for {
		i := bytes.Index(raw, []byte(`\u`))
		if i < 0 || i+6 > len(raw) {
			return false
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil || v < 0x20 && v != '\t' && v != '\n' && v != '\r' || v >= 0x7f && v <= 0x9f {
			return true
		}
		raw = raw[i+2:]
	}
}

// CheckText returns an EINVALID error naming field when s is not valid
// text of its kind (see TextProblem) or is longer than max bytes (max <= 0:
// no length limit). This is the one rule for every string margen stores;
// the HTTP edge and the domain both apply it.
func CheckText(field, s string, max int, multiline bool) error {
	switch TextProblem(s, multiline) {
	case "encoding":
		return Invalid(field, "error.text_encoding", "field", field)
	case "control":
		return Invalid(field, "error.text_control", "field", field)
	}
	if max > 0 && len(s) > max {
		return Invalid(field, "error.too_long", "field", field, "max", max)
	}
	return nil
}

// CheckJSONText checks every string (object keys as single-line text,
// values as multiline text of at most maxString bytes) of one JSON
// document, and names the first one at fault by its path below field, like
// "customer.ref" or "context.items[2]". raw must be valid JSON; checking
// it costs one scan when it holds no escapes or odd bytes.
//
// encoding/json turns invalid UTF-8 into U+FFFD and passes "\u0000"
// through, so a decoded value cannot tell; this reads the raw text.
func CheckJSONText(field string, raw []byte, maxString int) error {
	if (maxString <= 0 || len(raw) <= maxString) && textProblem(raw, true) == "" && !hasControlEscape(raw) {
		// No odd byte, no escaped control character, no string longer
		// than the limit: nothing to name.
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object    bool
		key       string
		index     int
		expectKey bool
	}
	var stack []frame
	path := func(last string) string {
		var b strings.Builder
		b.WriteString(field)
		for _, f := range stack {
			switch {
			case f.object && f.key != "":
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			case !f.object:
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if last != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(last)
		}
		if b.Len() == 0 {
			return "(body)"
		}
		return b.String()
	}
	// valueDone moves the enclosing container past one value.
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].expectKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // not ours: the decoder of the body reports syntax
		}
		rawTok := raw[before:dec.InputOffset()]
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{object: true, expectKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].expectKey
			if isKey {
				// A bad key is named by the object that holds it.
				top := &stack[len(stack)-1]
				top.key, top.expectKey = "", false
				if !utf8.Valid(rawTok) {
					return Invalid(path(""), "error.text_encoding", "field", path(""))
				}
				if err := CheckText(path(""), t, 0, TextLine); err != nil {
					return err
				}
				top.key = t
				continue
			}
			name := path("")
			if !utf8.Valid(rawTok) {
				return Invalid(name, "error.text_encoding", "field", name)
			}
			if err := CheckText(name, t, maxString, TextBlock); err != nil {
				return err
			}
			valueDone()
		default:
			valueDone()
		}
	}
}
