package storetest

import (
	"fmt"
	"testing"
)

// fakeTB records how a helper ended the test instead of ending it.
type fakeTB struct {
	testing.TB
	ended string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.ended = "fatal: " + fmt.Sprintf(format, args...)
	panic(f)
}
func (f *fakeTB) Skip(args ...any) {
	f.ended = "skip: " + fmt.Sprint(args...)
	panic(f)
}

func endOf(f *fakeTB, fn func(testing.TB)) (ended string) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
		ended = f.ended
	}()
	fn(f)
	return ""
}

// TestRequirePostgres: without a server, PostgresURL skips, unless
// MARGEN_REQUIRE_POSTGRES asks for it, and then it fails.
func TestRequirePostgres(t *testing.T) {
	t.Setenv(EnvPostgres, "")
	for _, c := range []struct{ require, want string }{
		{"", "skip: "}, {"0", "skip: "}, {"1", "fatal: "}, {"true", "fatal: "},
	} {
		t.Setenv(EnvRequirePostgres, c.require)
		got := endOf(&fakeTB{TB: t}, func(tb testing.TB) { PostgresURL(tb) })
		if len(got) < len(c.want) || got[:len(c.want)] != c.want {
			t.Errorf("%s=%q: PostgresURL ended with %q, want %q...", EnvRequirePostgres, c.require, got, c.want)
		}
	}
}
