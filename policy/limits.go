package policy

import (
	"errors"
	"fmt"
	"io"

	"github.com/goccy/go-yaml/scanner"
	"github.com/goccy/go-yaml/token"
)

// Limits on a policy document. A business's policy stays far below each of
// them (the complete restaurant example is 5 KB, nested 6 levels deep, with
// about 700 YAML elements); they exist so that no document, however hostile,
// can make Parse use much memory or time. The YAML parser's cost grows with
// the square of the nesting depth, so the document is checked by a linear
// pre-scan before it is parsed; the counts of rules and the size of each
// condition are checked while it is parsed. docs/policy.md lists them.
const (
	// MaxPolicySize is the largest document, in bytes.
	MaxPolicySize = 1 << 20
	// MaxPolicyNodes bounds the YAML elements of a document: its indicator
	// characters ([ ] { } , : - ? & * ! | > # % ' ") and line breaks, an
	// upper bound on the tokens the YAML scanner makes of it. (The scanner's
	// work on a run of '%', read as a directive, grows with the square of
	// its length: counting them bounds it too.)
	MaxPolicyNodes = 50_000
	// MaxPolicyDepth bounds the nesting of collections (block and flow
	// together); a policy needs 5.
	MaxPolicyDepth = 24
	// MaxScalarLen bounds one string or other scalar, in bytes.
	MaxScalarLen = 16 << 10
	// MaxActions, MaxRoles, MaxBudgets, MaxGrants and MaxForbids bound the
	// entries of each top-level list; they also keep the indexes built at
	// load time (roles x actions) small.
	MaxActions = 200
	MaxRoles   = 100
	MaxBudgets = 100
	MaxGrants  = 1000
	MaxForbids = 200
	// MaxListLen bounds the lists inside an entry (a grant's actions, teams
	// and budgets, a role's inherits, a forbid's roles).
	MaxListLen = 200
	// MaxConditionLen bounds one condition (`when`), in code points.
	MaxConditionLen = 4096
	// MaxConditionsSize bounds all the conditions of a policy together, in
	// bytes: each is compiled when the policy is parsed.
	MaxConditionsSize = 128 << 10
	// MaxConditionDepth bounds the nesting of a condition's expression
	// (parentheses, calls, operators), which the CEL parser walks
	// recursively.
	MaxConditionDepth = 32
	// MaxErrors bounds the problems reported for one document; the rest are
	// summarised in one last entry.
	MaxErrors = 100
)

// Names of the limits, in Error.Limit. A client (the HTTP API) uses them to
// say which limit a document broke.
const (
	LimitSize           = "size"
	LimitNodes          = "nodes"
	LimitDepth          = "depth"
	LimitAlias          = "alias"
	LimitScalar         = "scalar"
	LimitEntries        = "entries"
	LimitList           = "list"
	LimitCondition      = "condition"
	LimitConditionsSize = "conditions_size"
	LimitConditionDepth = "condition_depth"
)

// limitError is an Error that reports a broken limit.
func limitError(line, col int, path, limit string, max int, format string, args ...any) Error {
	e := newError(line, col, path, format, args...)
	e.Limit, e.Max = limit, max
	return e
}

// isIndicator reports whether c is a YAML indicator character or a line
// break: every YAML token but a plain scalar starts with one, and a plain
// scalar is ended by one (or by the end of the document), so a document with
// n of them has at most 2n+1 tokens.
func isIndicator(c byte) bool {
	switch c {
	case '[', ']', '{', '}', ',', ':', '-', '?', '&', '*', '!', '|', '>', '#', '%', '\'', '"', '\n', '\r', '\t':
		return true
	}
	return false
}

// prescan checks the document's size, element count, nesting depth and
// scalar lengths before it is parsed, and returns its tokens for the
// parser. (Aliases are refused by the parser, which never expands them,
// with the path of each.) It is linear in the size of the document: first a
// byte count that allocates nothing bounds the work of the YAML scanner,
// then the scanner runs once, stopping at the first invalid token (the
// library's own tokenizer starts over after each invalid character, which
// costs the square of the document's length), and its tokens are walked
// once. It returns the first problem found: a broken limit or a syntax
// error.
func prescan(src []byte) (token.Tokens, *Error) {
	if len(src) > MaxPolicySize {
		e := limitError(1, 1, "", LimitSize, MaxPolicySize, "policy is too large (at most %d bytes)", MaxPolicySize)
		return nil, &e
	}
	n, line := 0, 1
	for _, c := range src {
		if c == '\n' {
			line++
		}
		if isIndicator(c) {
			n++
			if n > MaxPolicyNodes {
				e := limitError(line, 1, "", LimitNodes, MaxPolicyNodes, "policy has too many YAML elements (at most %d)", MaxPolicyNodes)
				return nil, &e
			}
		}
	}
	tokens, e := tokenize(string(src))
	if e != nil {
		return nil, e
	}
	if e := scanTokens(tokens); e != nil {
		return nil, e
	}
	return tokens, nil
}

// tokenize runs the YAML scanner over src, stopping at the first invalid
// token, which it reports as a syntax error.
func tokenize(src string) (tokens token.Tokens, e *Error) {
	defer func() {
		if r := recover(); r != nil {
			tokens, e = nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("YAML syntax error: %v", r)}
		}
	}()
	var s scanner.Scanner
	s.Init(src)
	for {
		sub, err := s.Scan()
		if err == io.EOF {
			return tokens, nil
		}
		if err != nil {
			ne := newError(1, 1, "", "YAML syntax error: %s", err.Error())
			e := &ne
			var ite *scanner.InvalidTokenError
			if errors.As(err, &ite) && ite.Token != nil && ite.Token.Position != nil {
				e.Line, e.Column = ite.Token.Position.Line, ite.Token.Position.Column
			}
			return nil, e
		}
		tokens.Add(sub...)
	}
}

// blockLevel is an open block collection: the column of its entries and
// whether it is a sequence (entries "- ") or a mapping (entries "key:").
type blockLevel struct {
	col int
	seq bool
}

// scanTokens walks the tokens once, measuring the nesting depth (open block
// collections, tracked by the column of their entries as YAML does, plus
// open flow collections) and refusing overlong scalars.
func scanTokens(tokens token.Tokens) *Error {
	var block []blockLevel
	flow := 0
	fail := func(tk *token.Token, limit string, max int, format string, args ...any) *Error {
		line, col := 0, 0
		if tk.Position != nil {
			line, col = tk.Position.Line, tk.Position.Column
		}
		e := limitError(line, col, "", limit, max, format, args...)
		return &e
	}
	// enter records a block entry at column col and reports the depth.
	enter := func(col int, seq bool) int {
		for len(block) > 0 {
			top := block[len(block)-1]
			if top.col > col || (top.col == col && top.seq && !seq) {
				// A shallower entry closes the deeper collections; a key at
				// the column of a sequence ends the sequence that was the
				// value of the previous key ("key:\n- a\nnext:").
				block = block[:len(block)-1]
				continue
			}
			break
		}
		if len(block) == 0 || block[len(block)-1].col < col || block[len(block)-1].seq != seq {
			block = append(block, blockLevel{col: col, seq: seq})
		}
		return len(block) + flow
	}
	depth := 0
	for _, tk := range tokens {
		col := 0
		if tk.Position != nil {
			col = tk.Position.Column
		}
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			flow++
			depth = len(block) + flow
		case token.SequenceEndType, token.MappingEndType:
			if flow > 0 {
				flow--
			}
		case token.SequenceEntryType:
			if flow == 0 {
				depth = enter(col, true)
			}
		case token.MappingValueType, token.MappingKeyType:
			if flow == 0 {
				if tk.Type == token.MappingValueType && tk.Prev != nil && tk.Prev.Position != nil {
					col = tk.Prev.Position.Column // the key's column
				}
				depth = enter(col, false)
			}
		}
		if depth > MaxPolicyDepth {
			return fail(tk, LimitDepth, MaxPolicyDepth, "policy is nested too deeply (at most %d levels)", MaxPolicyDepth)
		}
		if len(tk.Value) > MaxScalarLen {
			return fail(tk, LimitScalar, MaxScalarLen, "text is too long (%d bytes, at most %d)", len(tk.Value), MaxScalarLen)
		}
	}
	return nil
}
