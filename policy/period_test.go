package policy

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func TestPeriodKey(t *testing.T) {
	bogota := mustLoc(t, "America/Bogota")        // UTC-5, no DST
	costaRica := mustLoc(t, "America/Costa_Rica") // UTC-6, no DST
	madrid := mustLoc(t, "Europe/Madrid")         // CET/CEST
	auckland := mustLoc(t, "Pacific/Auckland")    // UTC+13 in (southern) summer
	utc := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name             string
		at               string
		loc              *time.Location
		day, week, month string
	}{
		{"plain UTC", "2026-11-25T12:00:00Z", nil, "2026-11-25", "2026-W48", "2026-11"},
		{"Bogotá evening is the previous UTC day", "2026-11-25T03:00:00Z", bogota, "2026-11-24", "2026-W48", "2026-11"},
		{"Bogotá: last minute of November", "2026-12-01T04:59:59Z", bogota, "2026-11-30", "2026-W49", "2026-11"},
		{"Bogotá: first second of December", "2026-12-01T05:00:00Z", bogota, "2026-12-01", "2026-W49", "2026-12"},
		{"Costa Rica: month end", "2026-11-01T05:59:00Z", costaRica, "2026-10-31", "2026-W44", "2026-10"},
		{"Costa Rica: month start", "2026-11-01T06:00:00Z", costaRica, "2026-11-01", "2026-W44", "2026-11"},
		{"week starts on Monday: Sunday", "2026-11-29T12:00:00Z", nil, "2026-11-29", "2026-W48", "2026-11"},
		{"week starts on Monday: Monday", "2026-11-30T12:00:00Z", nil, "2026-11-30", "2026-W49", "2026-11"},
		{"Bogotá new year's eve, UTC already 2027", "2027-01-01T02:00:00Z", bogota, "2026-12-31", "2026-W53", "2026-12"},
		{"ISO week 53 reaches into January", "2027-01-03T12:00:00Z", nil, "2027-01-03", "2026-W53", "2027-01"},
		{"ISO week 1 of 2027", "2027-01-04T12:00:00Z", nil, "2027-01-04", "2027-W01", "2027-01"},
		{"early January in the previous ISO year", "2021-01-03T12:00:00Z", nil, "2021-01-03", "2020-W53", "2021-01"},
		{"late December in the next ISO year", "2024-12-30T12:00:00Z", nil, "2024-12-30", "2025-W01", "2024-12"},
		{"Madrid: spring forward, before", "2026-03-29T00:59:59Z", madrid, "2026-03-29", "2026-W13", "2026-03"},
		{"Madrid: spring forward, after", "2026-03-29T01:00:00Z", madrid, "2026-03-29", "2026-W13", "2026-03"},
		{"Madrid: midnight under CET", "2026-03-28T23:00:00Z", madrid, "2026-03-29", "2026-W13", "2026-03"},
		{"Madrid: just before midnight under CET", "2026-03-28T22:59:59Z", madrid, "2026-03-28", "2026-W13", "2026-03"},
		{"Madrid: midnight under CEST", "2026-10-24T22:00:00Z", madrid, "2026-10-25", "2026-W43", "2026-10"},
		{"Madrid: just before midnight under CEST", "2026-10-24T21:59:59Z", madrid, "2026-10-24", "2026-W43", "2026-10"},
		{"Madrid: fall back, repeated hour", "2026-10-25T01:30:00Z", madrid, "2026-10-25", "2026-W43", "2026-10"},
		{"Madrid: new year", "2026-12-31T23:00:00Z", madrid, "2027-01-01", "2026-W53", "2027-01"},
		{"Auckland: a day ahead", "2026-12-31T11:00:00Z", auckland, "2027-01-01", "2026-W53", "2027-01"},
		{"leap day", "2028-02-29T12:00:00Z", nil, "2028-02-29", "2028-W09", "2028-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := utc(tt.at)
			for period, want := range map[string]string{PeriodDay: tt.day, PeriodWeek: tt.week, PeriodMonth: tt.month} {
				if got := PeriodKey(period, at, tt.loc); got != want {
					t.Errorf("PeriodKey(%s) = %q, want %q", period, got, want)
				}
			}
		})
	}
	if got := PeriodKey("year", time.Now(), nil); got != "" {
		t.Errorf("unknown period: %q", got)
	}
}

// PeriodKey formats by hand for speed; it must agree with the standard
// library everywhere.
func TestPeriodKeyMatchesTimeFormat(t *testing.T) {
	locs := []*time.Location{time.UTC, mustLoc(t, "America/Bogota"), mustLoc(t, "Europe/Madrid"), mustLoc(t, "Asia/Kolkata")}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		at := time.Unix(rng.Int64N(1<<37)-(1<<36), 0) // years about -200 to 4100
		loc := locs[rng.IntN(len(locs))]
		lt := at.In(loc)
		y, w := lt.ISOWeek()
		for period, want := range map[string]string{
			PeriodDay:   lt.Format("2006-01-02"),
			PeriodMonth: lt.Format("2006-01"),
			PeriodWeek:  fmt.Sprintf("%s-W%02d", time.Date(y, 6, 1, 0, 0, 0, 0, time.UTC).Format("2006"), w),
		} {
			if got := PeriodKey(period, at, loc); got != want {
				t.Fatalf("PeriodKey(%s, %s, %s) = %q, want %q", period, at, loc, got, want)
			}
		}
	}
}

// The evaluator's day-key cache must answer as PeriodKey does, hour by hour
// across time-zone changes, including zones whose clocks jump at midnight
// (São Paulo's DST began at 00:00, so that day started at 01:00; Santiago
// and Beirut change at midnight too) and instants just inside and outside
// each cached day.
func TestDayKeyCacheMatchesPeriodKey(t *testing.T) {
	zones := []string{"UTC", "America/Bogota", "Europe/Madrid", "America/Sao_Paulo", "America/Santiago",
		"Asia/Beirut", "America/Havana", "Pacific/Apia", "Australia/Lord_Howe", "Asia/Kolkata"}
	var day atomic.Pointer[dayKey]
	for _, name := range zones {
		loc := mustLoc(t, name)
		// 2016 to 2018 hold São Paulo's last midnight changes; the step
		// is prime to an hour, so the walk lands on every minute.
		start := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
		for at := start; at.Before(start.AddDate(3, 0, 0)); at = at.Add(53 * time.Minute) {
			for _, u := range []time.Time{at, at.Add(-time.Second), at.Add(time.Second)} {
				e := evaluator{r: &Request{At: u, Loc: loc}, day: &day}
				for _, period := range []string{PeriodDay, PeriodWeek, PeriodMonth} {
					if got, want := e.periodKey(period), PeriodKey(period, u, loc); got != want {
						t.Fatalf("periodKey(%s) at %s in %s = %q, want %q", period, u, name, got, want)
					}
				}
			}
		}
	}
	// Another zone's entry is never used for this one.
	e := evaluator{day: &day}
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	if got := e.dayOf(at, mustLoc(t, "America/Bogota")); got.key != "2026-11-24" {
		t.Fatalf("after %s: %q", day.Load().loc, got.key)
	}
	if got := e.dayOf(at, nil); got.key != "2026-11-25" {
		t.Fatalf("UTC after Bogotá: %q", got.key)
	}
}
