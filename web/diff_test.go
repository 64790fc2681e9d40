package web

import (
	"strings"
	"testing"
)

func TestLineDiff(t *testing.T) {
	render := func(ls []diffLine) string {
		var b strings.Builder
		for _, l := range ls {
			b.WriteByte(l.Op)
			b.WriteString(l.Text)
			b.WriteByte('\n')
		}
		return b.String()
	}
	for _, c := range []struct{ a, b, want string }{
		{"a\nb\nc\n", "a\nb\nc\n", " a\n b\n c\n"},
		{"a\nb\nc\n", "a\nx\nc\n", " a\n-b\n+x\n c\n"},
		{"a\nc", "a\nb\nc", " a\n+b\n c\n"},
		{"", "a", "+a\n"},
		{"a\nb\nc\nd", "b\nd\ne", "-a\n b\n-c\n d\n+e\n"},
	} {
		got := lineDiff(c.a, c.b)
		if render(got) != c.want {
			t.Errorf("lineDiff(%q, %q) =\n%s\nwant\n%s", c.a, c.b, render(got), c.want)
		}
		// Line numbers count each side.
		old, nw := 0, 0
		for _, l := range got {
			if l.Op != '+' {
				old++
				if l.Old != old {
					t.Errorf("%q: old line %d numbered %d", c.a, old, l.Old)
				}
			}
			if l.Op != '-' {
				nw++
				if l.New != nw {
					t.Errorf("%q: new line %d numbered %d", c.b, nw, l.New)
				}
			}
		}
	}
}
