package margen

import (
	"strings"
	"testing"
	"time"
)

func TestSurveyRules(t *testing.T) {
	lim := SurveyLimits{PointPerHour: 3, DeviceEvery: time.Hour}
	for _, c := range []struct {
		counts SurveyCounts
		want   string
	}{
		{SurveyCounts{}, ""},
		{SurveyCounts{PointHour: 2}, ""},
		{SurveyCounts{PointHour: 3}, RefusedPointHour},
		{SurveyCounts{DeviceRecent: 1}, RefusedDevice},
		{SurveyCounts{PointHour: 9, DeviceRecent: 1}, RefusedDevice},
	} {
		if got := AdmitPointAnswer(c.counts, lim); got != c.want {
			t.Errorf("AdmitPointAnswer(%+v) = %q, want %q", c.counts, got, c.want)
		}
	}
	if got := AdmitPointAnswer(SurveyCounts{PointHour: DefaultPointPerHour - 1}, SurveyLimits{}); got != "" {
		t.Errorf("defaults refuse below the hourly limit: %q", got)
	}
	for _, c := range []struct {
		scale string
		score int
		low   bool
		ok    bool
	}{
		{ScaleCSAT, 1, true, true}, {ScaleCSAT, 2, true, true}, {ScaleCSAT, 3, false, true}, {ScaleCSAT, 5, false, true},
		{ScaleCSAT, 0, false, false}, {ScaleCSAT, 6, false, false},
		{ScaleNPS, 0, true, true}, {ScaleNPS, 6, true, true}, {ScaleNPS, 7, false, true}, {ScaleNPS, 10, false, true},
		{ScaleNPS, 11, false, false}, {ScaleNPS, -1, false, false}, {"stars", 3, false, false},
	} {
		a, err := NewSurveyAnswer(c.scale, c.score, "", "es")
		if (err == nil) != c.ok || err == nil && a.Low != c.low {
			t.Errorf("NewSurveyAnswer(%s, %d) = %+v, %v", c.scale, c.score, a, err)
		}
	}
	if _, err := NewSurveyAnswer(ScaleCSAT, 5, strings.Repeat("x", MaxSurveyComment+1), "es"); !IsCode(err, ETOOLARGE) {
		t.Errorf("long comment: %v", err)
	}
	if _, err := NewSurveyAnswer(ScaleCSAT, 5, "a\x00b", "es"); !IsCode(err, EINVALID) {
		t.Errorf("NUL in a comment: %v", err)
	}
	if _, err := NewSurveyAnswer(ScaleCSAT, 5, "\xff", "es"); !IsCode(err, EINVALID) {
		t.Errorf("invalid UTF-8 in a comment: %v", err)
	}
	if FirstName("  Camila Rojas ") != "Camila" || FirstName("Ana") != "Ana" {
		t.Error("FirstName")
	}
}

func TestSurveyTokens(t *testing.T) {
	k := NewSurveyTokens(AuditKey("0123456789abcdef0123456789abcdef").SurveyKey())
	tok, hash := k.New()
	if len(tok) != SurveyTokenLen || !k.Valid(tok) || string(hash) != string(SurveyTokenHash(tok)) {
		t.Fatalf("token %q (%d) not valid", tok, len(tok))
	}
	if tok2, _ := k.New(); tok2 == tok {
		t.Fatal("two tokens alike")
	}
	other := NewSurveyTokens([]byte("another key"))
	if other.Valid(tok) {
		t.Fatal("a token of another key is valid")
	}
	b := []byte(tok)
	b[3] ^= 1
	if k.Valid(string(b)) || k.Valid(tok[:len(tok)-1]) || k.Valid(tok+"A") || k.Valid("") || k.Valid(strings.Repeat("!", SurveyTokenLen)) {
		t.Fatal("a changed token is valid")
	}
}
