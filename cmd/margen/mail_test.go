package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen/internal/testsupport"
)

// serveMail starts margen serve on a free port with the extra flags (the
// public URL is the server's own address) and returns its base URL; it
// stops when the test ends.
func serveMail(t *testing.T, db string, extra ...string) string {
	t.Helper()
	port := testsupport.FreePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:" + strconv.Itoa(port), "--public-url", base}, extra...)
	go func() { done <- run(ctx, args, strings.NewReader(""), &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
		if strings.Contains(stderr.String(), "@ops.example") && strings.Contains(stderr.String(), "cliente") {
			t.Errorf("the logs name the customer's address:\n%s", stderr.String())
		}
	})
	waitListening(t, &stdout, &stderr, done)
	return base
}

// firstAct returns the id of the organisation's newest act, through the API.
func firstAct(t *testing.T, base, token string) string {
	t.Helper()
	code, body := get(t, base+"/api/v1/acts?limit=1", token)
	var acts struct {
		Items []struct{ ID string } `json:"items"`
	}
	if code != 200 || json.Unmarshal(body, &acts) != nil || len(acts.Items) == 0 {
		t.Fatalf("GET /api/v1/acts: %d %s", code, body)
	}
	return acts.Items[0].ID
}

// surveyLink asks for a survey link of an act with a JSON body.
func surveyLink(t *testing.T, base, token, act, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/acts/"+act+"/survey-link", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// metricValue reads one series of /metrics.
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics", "")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("/metrics lacks %s", series)
	return 0
}

var linkInMail = regexp.MustCompile(`http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]{32}`)

// TestSurveyEmailThroughSMTP: with SMTP configured, a survey link asked
// for with an email address goes out through a real SMTP server (mailpit,
// started by the test): the job sends it, the mail is read back through
// mailpit's API, in the language asked for, with the business's name, in
// plain text and HTML; the link in it opens the survey on the running
// server, which takes the answer; /metrics counts the mail as sent. On
// SQLite and PostgreSQL.
func TestSurveyEmailThroughSMTP(t *testing.T) {
	mp := testsupport.StartMailpit(t)
	for name, fresh := range freshDBs(t) {
		t.Run(name, func(t *testing.T) {
			db := fresh(t)
			token := setupOpsOrg(t, db)
			decideMany(t, db, 1, 37)
			base := serveMail(t, db, "--smtp-host", "127.0.0.1", "--smtp-port", strconv.Itoa(mp.SMTPPort),
				"--smtp-tls", "none", "--smtp-from", "encuestas@ops.example")
			act := firstAct(t, base, token)
			to := "cliente-" + name + "@ops.example"

			// A bad address is refused before anything is written.
			if code, out := surveyLink(t, base, token, act, `{"email":"x@y.z\r\nBcc: evil@example.com"}`); code != 400 {
				t.Fatalf("header injection: %d %v", code, out)
			}
			code, out := surveyLink(t, base, token, act, `{"email":"`+to+`","language":"en"}`)
			if code != 201 || out["email"] == nil {
				t.Fatalf("survey link with email: %d %v", code, out)
			}
			msg := mp.WaitMessage(t, to, 20*time.Second)
			if msg.From.Address != "encuestas@ops.example" || !strings.Contains(msg.Subject, "Ops") ||
				!strings.Contains(msg.Text, "Answer the survey") && !strings.Contains(msg.HTML, "Answer the survey") {
				t.Errorf("mail: from %s, subject %q, text %q", msg.From.Address, msg.Subject, msg.Text)
			}
			link := linkInMail.FindString(msg.Text)
			if link == "" || link != out["url"] || !strings.Contains(msg.HTML, `href="`+link+`"`) {
				t.Fatalf("the link in the mail %q (html has it: %v) is not the API's %v", link,
					strings.Contains(msg.HTML, link), out["url"])
			}
			code, page := get(t, link, "")
			if code != 200 || !strings.Contains(string(page), "Ops") {
				t.Fatalf("GET the mail's link: %d", code)
			}
			resp, err := http.PostForm(link, url.Values{"score": {"5"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`id="survey-thanks"`)) {
				t.Fatalf("answering through the mail's link: %d", resp.StatusCode)
			}
			code, body := get(t, base+"/api/v1/acts/"+act+"/survey-answers", token)
			if code != 200 || !strings.Contains(string(body), `"score":5`) {
				t.Errorf("the act's answers: %d %s", code, body)
			}
			if v := metricValue(t, base, `margen_email_total{result="sent"}`); v != 1 {
				t.Errorf("margen_email_total{result=sent} = %v, want 1", v)
			}
		})
	}
}

// TestSurveyEmailFailureRetried: an SMTP server that is not there (a
// closed port) fails the attempt; the job is retried (margen_email_total
// counts the retry) and the link itself works.
func TestSurveyEmailFailureRetried(t *testing.T) {
	db := freshDBs(t)["sqlite"](t)
	token := setupOpsOrg(t, db)
	decideMany(t, db, 1, 37)
	closed := testsupport.FreePort(t)
	base := serveMail(t, db, "--smtp-host", "127.0.0.1", "--smtp-port", strconv.Itoa(closed),
		"--smtp-tls", "none", "--smtp-from", "encuestas@ops.example")
	act := firstAct(t, base, token)
	if code, out := surveyLink(t, base, token, act, `{"email":"cliente@ops.example"}`); code != 201 {
		t.Fatalf("survey link with email: %d %v", code, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(t, base, `margen_email_total{result="retry"}`) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the failed attempt was not counted as a retry")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := metricValue(t, base, `margen_email_total{result="sent"}`); v != 0 {
		t.Errorf("sent = %v through a closed port", v)
	}
}

// TestSMTPConfig: bad SMTP settings stop serve with a clear message, and
// the password never shows in the configuration's log line.
func TestSMTPConfig(t *testing.T) {
	db := freshDBs(t)["sqlite"](t)
	mustRun(t, "migrate", "--db", db)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--smtp-host", "mail.example.com", "--smtp-from", "a@example.com", "--smtp-tls", "ssl", "--public-url", "https://m.example"}, "--smtp-tls"},
		{[]string{"--smtp-host", "mail.example.com", "--smtp-from", "a@example.com", "--smtp-port", "70000", "--public-url", "https://m.example"}, "--smtp-port"},
		{[]string{"--smtp-host", "mail.example.com", "--smtp-from", "a@example.com"}, "--public-url"},
		{[]string{"--smtp-host", "mail.example.com", "--public-url", "https://m.example"}, "--smtp-from"},
		{[]string{"--smtp-host", "mail.example.com", "--smtp-from", "not an address", "--public-url", "https://m.example"}, "--smtp-from"},
		{[]string{"--public-url", "ftp://m.example"}, "--public-url"},
		{[]string{"--smtp-user", "u"}, "--smtp-host"},
	} {
		_, _, err := margenRun(t, append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v: %v, want an error naming %s", c.args, err, c.want)
		}
	}
	env := map[string]string{"MARGEN_SMTP_HOST": "mail.example.com", "MARGEN_SMTP_PASSWORD": "s3cr3t-pw",
		"MARGEN_SMTP_USER": "u", "MARGEN_SMTP_FROM": "a@example.com", "MARGEN_SMTP_TLS": "tls",
		"MARGEN_PUBLIC_URL": "https://m.example/"}
	a := &app{getenv: func(k string) string { return env[k] }}
	cfg, err := a.config()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.smtpConfig(nil); err != nil {
		t.Fatal(err)
	}
	if cfg.SMTP.Port != 465 || cfg.SMTP.PublicURL != "https://m.example" || cfg.SMTP.Password != "s3cr3t-pw" {
		t.Errorf("smtp config = %+v", cfg.SMTP)
	}
	var logged bytes.Buffer
	cfg.logger(&logged).Info("start", "config", cfg)
	if strings.Contains(logged.String(), "s3cr3t-pw") || !strings.Contains(logged.String(), "smtp.host=mail.example.com") {
		t.Errorf("config log: %s", logged.String())
	}
	for k, v := range map[string]string{"MARGEN_SMTP_TLS": "ssl", "MARGEN_SMTP_PORT": "0"} {
		bad := map[string]string{k: v}
		if _, err := (&app{getenv: func(k string) string { return bad[k] }}).config(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}
