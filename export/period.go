package export

import (
	"time"

	"github.com/margenhq/margen"
)

// localLayouts are the forms a bound may take without a time zone: they
// are read in the organisation's time zone.
var localLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// ParseTime reads a bound of the period: an RFC 3339 time, or a date
// ("2026-11-25", midnight) or local date and time ("2026-11-25T10:00") in
// the organisation's time zone. Empty is no bound.
func ParseTime(field, v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, margen.Invalid(field, "error.export_time", "field", field)
}

// ParsePeriod reads --since and --until (or the since and until query
// parameters); until must come after since.
func ParsePeriod(since, until string, loc *time.Location) (s, u time.Time, err error) {
	if s, err = ParseTime("since", since, loc); err != nil {
		return s, u, err
	}
	if u, err = ParseTime("until", until, loc); err != nil {
		return s, u, err
	}
	if !s.IsZero() && !u.IsZero() && !u.After(s) {
		return s, u, margen.Invalid("until", "error.export_period")
	}
	return s, u, nil
}
