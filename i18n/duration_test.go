package i18n

import (
	"testing"
	"time"
)

// TestFormatDuration: seconds, minutes, hours and minutes, and from two
// days on days and hours.
func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{42 * time.Second, "42 s"},
		{5 * time.Minute, "5 min"},
		{2 * time.Hour, "2 h"},
		{90 * time.Minute, "1 h 30 min"},
		{47*time.Hour + 59*time.Minute, "47 h 59 min"},
		{48 * time.Hour, "2 d"},
		{1738*time.Hour + 51*time.Minute, "72 d 10 h"},
	} {
		if got := FormatDuration(c.d); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
