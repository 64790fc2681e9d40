package policy

import (
	"os"
	"testing"
	"time"
)

func mustParseFile(tb testing.TB, path string) *Policy {
	tb.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return mustParse(tb, string(src))
}

func mustParse(tb testing.TB, src string) *Policy {
	tb.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return p
}

func mustLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}
