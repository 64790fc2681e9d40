package mailer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

// TestSurveyEmailsCappedPerMember: a member may ask for at most
// MaxSurveyEmailsPerHour survey emails in an hour; the next is refused with
// too_many and stores nothing (no link, no send, no job), another member is
// not held back, and an hour later the member may send again. On SQLite
// and PostgreSQL.
func TestSurveyEmailsCappedPerMember(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			st := e.Open(t)
			org := testsupport.NewOrg(t, st, testsupport.OrgOptions{Members: []testsupport.Member{{Login: "otro"}}})
			tokens := margen.NewSurveyTokens([]byte("k"))
			start := time.Now().UTC().Truncate(time.Second)
			send := func(member string, at time.Time, i int) error {
				tok, hash := tokens.New()
				l := &margen.SurveyLink{OrgID: org.ID, MemberID: member, TokenHash: hash, CreatedBy: member,
					CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
				return st.CreateSurveyLinkEmail(ctx, l, &margen.SurveyEmail{Address: fmt.Sprintf("c%d@example.com", i), Token: tok},
					member, nil)
			}
			for i := range margen.MaxSurveyEmailsPerHour {
				if err := send(org.Owner.ID, start.Add(time.Duration(i)*time.Second), i); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			at := start.Add(30 * time.Minute)
			if err := send(org.Owner.ID, at, 999); !margen.IsCode(err, margen.ETOOMANY) {
				t.Fatalf("send over the cap: %v, want too_many", err)
			}
			list, err := st.ListSurveyEmails(ctx, org.ID, 2*margen.MaxSurveyEmailsPerHour)
			if err != nil || len(list) != margen.MaxSurveyEmailsPerHour {
				t.Fatalf("sends after the refusal: %d, %v; want %d", len(list), err, margen.MaxSurveyEmailsPerHour)
			}
			other := org.Members["otro"]
			if err := send(other.ID, at, 1000); err != nil {
				t.Fatalf("another member's send: %v", err)
			}
			if err := send(org.Owner.ID, start.Add(61*time.Minute), 1001); err != nil {
				t.Fatalf("a send an hour later: %v", err)
			}
		})
	}
}
