package margen_test

import (
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

func TestParseEmail(t *testing.T) {
	for _, ok := range []string{"ana@example.com", " ana.b+x@sub.example.co ", "ñu@example.es"} {
		if _, err := margen.ParseEmail(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	long := strings.Repeat("a", 250) + "@x.es"
	for _, bad := range []string{"", "ana", "ana@", "@example.com", "ana@localhost", "Ana <ana@example.com>",
		"ana@example.com\r\nBcc: x@example.com", "ana@example.com,bob@example.com", "a b@example.com",
		"ana@exa\x00mple.com", long, "\xff@example.com", "ana@example.com; x"} {
		if _, err := margen.ParseEmail(bad); !margen.IsCode(err, margen.EINVALID) {
			t.Errorf("%q accepted", bad)
		}
	}
	if margen.EmailOf("+34 600 000 000") != "" || margen.EmailOf("ana@example.com") != "ana@example.com" {
		t.Error("EmailOf")
	}
	if got := margen.MaskEmail("ana@example.com"); got != "a•••@example.com" {
		t.Errorf("MaskEmail = %q", got)
	}
}

func TestEmailAfter(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	retry := at.Add(time.Minute)
	e := margen.SurveyEmail{Status: margen.EmailQueued, Token: "t"}
	e = margen.EmailAfter(e, false, margen.JobResult{At: at, Error: "dial tcp: connection refused", RetryAt: &retry})
	if e.Status != margen.EmailRetrying || e.Attempts != 1 || e.LastError == "" || e.Token != "t" {
		t.Errorf("retry: %+v", e)
	}
	f := margen.EmailAfter(e, false, margen.JobResult{At: at, Error: strings.Repeat("é", 400)})
	if f.Status != margen.EmailFailed || f.Attempts != 2 || f.Token != "" || len(f.LastError) > 300 {
		t.Errorf("failed: %+v", f)
	}
	s := margen.EmailAfter(e, true, margen.JobResult{At: at})
	if s.Status != margen.EmailSent || s.SentAt == nil || s.LastError != "" || s.Token != "" {
		t.Errorf("sent: %+v", s)
	}
	for asked, want := range map[string]string{"en": "en", "en-GB": "en", "": "es", "fr": "es", "es": "es"} {
		if got := margen.EmailLanguage(asked, ""); got != want {
			t.Errorf("EmailLanguage(%q) = %s", asked, got)
		}
	}
	if margen.EmailLanguage("", "en") != "en" {
		t.Error("the organisation's language")
	}
}
