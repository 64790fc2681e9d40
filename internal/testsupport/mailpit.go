package testsupport

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvRequireMailpit turns a test that cannot build mailpit into a failure
// instead of a skip (CI sets it).
const EnvRequireMailpit = "MARGEN_REQUIRE_MAILPIT"

// Mailpit is a real SMTP server for tests (github.com/axllent/mailpit, a
// tool dependency of the module, built from the module cache): SMTP on
// SMTPPort, its HTTP API at API.
type Mailpit struct {
	SMTPPort int
	API      string
}

var mailpitBuild struct {
	once sync.Once
	path string
	err  error
}

// mailpitBinary builds mailpit once per test process (the go build cache
// makes later processes fast).
func mailpitBinary() (string, error) {
	b := &mailpitBuild
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "margen-mailpit-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "mailpit")
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.path, "github.com/axllent/mailpit")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build mailpit: %v: %s", err, out)
		}
	})
	return b.path, b.err
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMailpit builds and starts mailpit on free ports for the test (it is
// stopped when the test ends). It skips the test when mailpit cannot be
// built, unless MARGEN_REQUIRE_MAILPIT is set.
func StartMailpit(t testing.TB) *Mailpit {
	t.Helper()
	bin, err := mailpitBinary()
	if err != nil {
		if os.Getenv(EnvRequireMailpit) != "" {
			t.Fatalf("mailpit is required (%s) but cannot be built: %v", EnvRequireMailpit, err)
		}
		t.Skipf("mailpit cannot be built here, so the SMTP tests are skipped: %v", err)
	}
	m := &Mailpit{SMTPPort: FreePort(t)}
	httpPort := FreePort(t)
	m.API = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	cmd := exec.Command(bin, "--smtp", "127.0.0.1:"+strconv.Itoa(m.SMTPPort), "--listen", "127.0.0.1:"+strconv.Itoa(httpPort),
		"--database", filepath.Join(t.TempDir(), "mailpit.db"), "--quiet", "--smtp-disable-rdns")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.API + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(m.SMTPPort)); err == nil {
				c.Close()
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not start: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MailpitMessage is a message as mailpit's API shows it.
type MailpitMessage struct {
	ID      string
	Subject string
	From    struct{ Address string }
	To      []struct{ Address string }
	Text    string
	HTML    string
}

// WaitMessage waits up to timeout for a message to addr and returns it in
// full (its text and HTML parts).
func (m *Mailpit) WaitMessage(t testing.TB, addr string, timeout time.Duration) *MailpitMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var list struct{ Messages []MailpitMessage }
		m.getJSON(t, "/api/v1/messages", &list)
		for _, msg := range list.Messages {
			for _, to := range msg.To {
				if strings.EqualFold(to.Address, addr) {
					var full MailpitMessage
					m.getJSON(t, "/api/v1/message/"+msg.ID, &full)
					return &full
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s within %s", addr, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *Mailpit) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(m.API + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit GET %s: %v", path, err)
	}
}
