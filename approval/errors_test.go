package approval_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/store/storetest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLatitudeErrorIsLogged: when the approver's latitude cannot be
// evaluated (the policy made the action non-monetary after the request), the
// request moves up as before, and the reason is logged with the request,
// not swallowed.
func TestLatitudeErrorIsLogged(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			f := newFixture(t, e.Open(t), testPolicy)
			var logs lockedBuffer
			svc := approval.New(f.st, f.eng, approval.Options{Clock: f.clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			a := f.request("fl1", "refund", 3000)

			changed := strings.Replace(testPolicy, "  - id: refund\n    label: {es: \"Reembolso\", en: \"Refund\"}\n",
				"  - id: refund\n    label: {es: \"Reembolso\", en: \"Refund\"}\n    monetary: false\n", 1)
			changed = strings.NewReplacer("    max_amount: 1000\n", "", "    max_amount: 5000\n", "", "    max_amount: 20000\n", "").Replace(changed)
			if err := f.st.PublishPolicy(context.Background(), &margen.PolicyVersion{OrgID: f.org.ID, Source: changed, CreatedBy: "test"}, nil); err != nil {
				t.Fatal(err)
			}
			f.eng.Invalidate(f.org.ID)

			_, err := svc.Answer(context.Background(), f.org, f.m["sup"], a.ID, true, "", nil)
			wantErr(t, err, margen.EFORBIDDEN, "error.approval_beyond_latitude")
			if got := logs.String(); !strings.Contains(got, "cannot evaluate the approver's latitude") || !strings.Contains(got, a.ID) ||
				!strings.Contains(got, "non-monetary") {
				t.Errorf("log:\n%s", got)
			}
		})
	}
}
