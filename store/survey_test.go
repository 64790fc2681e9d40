package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

// TestSurveyLinkOneAnswer: 50 concurrent answers on one link store exactly
// one; the others are told it was answered; an expired link and an unknown
// one are both "not found"; the trail seals links and answers.
func TestSurveyLinkOneAnswer(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.Open(t)
			tokens := margen.NewSurveyTokens([]byte("test key"))
			o := testsupport.NewOrg(t, db, testsupport.OrgOptions{Members: []testsupport.Member{{Login: "ana"}}})
			ana := o.Members["ana"]
			now := time.Now().UTC()

			set, err := db.SurveySettings(ctx, o.ID)
			if err != nil || set.Scale != margen.ScaleCSAT {
				t.Fatalf("default settings = %+v, %v", set, err)
			}
			if err := db.SetSurveyScale(ctx, o.ID, "stars", "test"); !margen.IsCode(err, margen.EINVALID) {
				t.Fatalf("an unknown scale: %v", err)
			}
			if err := db.SetSurveyScale(ctx, o.ID, margen.ScaleNPS, "test"); err != nil {
				t.Fatal(err)
			}
			if set, _ := db.SurveySettings(ctx, o.ID); set.Scale != margen.ScaleNPS {
				t.Fatalf("scale = %q", set.Scale)
			}

			tok, hash := tokens.New()
			link := &margen.SurveyLink{OrgID: o.ID, TokenHash: hash, MemberID: ana.ID, Team: ana.Team, CreatedBy: ana.ID,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := db.CreateSurveyLink(ctx, link, ana.ID, nil); err != nil {
				t.Fatal(err)
			}
			got, err := db.SurveyLinkByHash(ctx, margen.SurveyTokenHash(tok))
			if err != nil || got.ID != link.ID || got.AnsweredAt != nil {
				t.Fatalf("link by hash = %+v, %v", got, err)
			}
			if _, err := db.SurveyLinkByHash(ctx, margen.SurveyTokenHash(tok+"x")); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("unknown token: %v", err)
			}

			const n = 50
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					a, err := margen.NewSurveyAnswer(margen.ScaleNPS, i%11, "", "es")
					if err != nil {
						errs[i] = err
						return
					}
					a.OrgID, a.LinkID, a.MemberID, a.Team, a.CreatedAt = o.ID, link.ID, ana.ID, ana.Team, now.Add(time.Minute)
					_, errs[i] = db.AnswerSurvey(ctx, &a, margen.SurveyLimits{})
				})
			}
			wg.Wait()
			stored := 0
			for _, err := range errs {
				switch {
				case err == nil:
					stored++
				case margen.IsCode(err, margen.ECONFLICT):
				default:
					t.Errorf("answer: %v", err)
				}
			}
			answers, err := db.ListSurveyAnswers(ctx, o.ID, margen.SurveyAnswerFilter{MemberID: ana.ID})
			if stored != 1 || err != nil || len(answers) != 1 || answers[0].LinkID != link.ID {
				t.Fatalf("stored %d answers, listed %d (%v): want exactly one", stored, len(answers), err)
			}
			low := answers[0].Low
			if l, _ := db.ListSurveyAnswers(ctx, o.ID, margen.SurveyAnswerFilter{Low: &low}); len(l) != 1 {
				t.Fatalf("filter by low = %d answers", len(l))
			}
			if l, _ := db.ListSurveyAnswers(ctx, o.ID, margen.SurveyAnswerFilter{ActID: "act_none"}); len(l) != 0 {
				t.Fatalf("filter by another act = %d answers", len(l))
			}

			// An expired link answers like a missing one.
			_, hash2 := tokens.New()
			old := &margen.SurveyLink{OrgID: o.ID, TokenHash: hash2, MemberID: ana.ID, CreatedBy: ana.ID,
				CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
			if err := db.CreateSurveyLink(ctx, old, ana.ID, nil); err != nil {
				t.Fatal(err)
			}
			a, _ := margen.NewSurveyAnswer(margen.ScaleNPS, 9, "", "es")
			a.OrgID, a.LinkID, a.CreatedAt = o.ID, old.ID, now
			if _, err := db.AnswerSurvey(ctx, &a, margen.SurveyLimits{}); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("expired link: %v, want not found", err)
			}
			a.LinkID = "svl_missing"
			if _, err := db.AnswerSurvey(ctx, &a, margen.SurveyLimits{}); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("missing link: %v, want not found", err)
			}
			// A link for an act of nobody's is refused.
			_, hash3 := tokens.New()
			if err := db.CreateSurveyLink(ctx, &margen.SurveyLink{OrgID: o.ID, TokenHash: hash3, MemberID: ana.ID,
				ActID: "act_missing", CreatedBy: ana.ID}, ana.ID, nil); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("link for a missing act: %v", err)
			}
			if rep, err := db.CheckAudit(ctx, o.ID); err != nil || !rep.OK() {
				t.Fatalf("audit after surveys: %+v, %v", rep, err)
			}
		})
	}
}

// TestSurveyPointLimits: a standing QR code takes one answer per device per
// interval and a number per hour; refused answers are counted, per reason.
func TestSurveyPointLimits(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.Open(t)
			tokens := margen.NewSurveyTokens([]byte("test key"))
			o := testsupport.NewOrg(t, db, testsupport.OrgOptions{Members: []testsupport.Member{{Login: "ana"}}})
			now := time.Now().UTC()
			tok, hash := tokens.New()
			p := &margen.SurveyPoint{OrgID: o.ID, Name: "Mesa 4", Kind: margen.PointTable, Token: tok, TokenHash: hash,
				AskServer: true, CreatedBy: "test"}
			if err := db.CreateSurveyPoint(ctx, p, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateSurveyPoint(ctx, &margen.SurveyPoint{OrgID: o.ID, Name: " ", Kind: margen.PointTable}, "test"); !margen.IsCode(err, margen.EINVALID) {
				t.Fatalf("a point without a name: %v", err)
			}
			if err := db.CreateSurveyPoint(ctx, &margen.SurveyPoint{OrgID: o.ID, Name: "x", Kind: margen.PointSite,
				Team: "nope", Token: "t", TokenHash: []byte("h")}, "test"); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("a point of a missing team: %v", err)
			}
			if got, err := db.SurveyPointByHash(ctx, margen.SurveyTokenHash(tok)); err != nil || got.ID != p.ID || !got.AskServer || got.Token != tok {
				t.Fatalf("point by hash = %+v, %v", got, err)
			}
			lim := margen.SurveyLimits{PointPerHour: 3, DeviceEvery: 10 * time.Minute}
			answer := func(device string, at time.Time) string {
				t.Helper()
				a, _ := margen.NewSurveyAnswer(margen.ScaleCSAT, 5, "muy bien", "es")
				a.OrgID, a.PointID, a.Device, a.CreatedAt = o.ID, p.ID, device, at
				refused, err := db.AnswerSurvey(ctx, &a, lim)
				if err != nil {
					t.Fatal(err)
				}
				return refused
			}
			if r := answer("d1", now); r != "" {
				t.Fatalf("first answer refused: %s", r)
			}
			if r := answer("d1", now.Add(time.Minute)); r != margen.RefusedDevice {
				t.Fatalf("same device again = %q, want %q", r, margen.RefusedDevice)
			}
			if r := answer("d1", now.Add(11*time.Minute)); r != "" {
				t.Fatalf("same device after the interval refused: %s", r)
			}
			if r := answer("d2", now.Add(12*time.Minute)); r != "" {
				t.Fatalf("another device refused: %s", r)
			}
			if r := answer("d3", now.Add(13*time.Minute)); r != margen.RefusedPointHour {
				t.Fatalf("fourth answer in the hour = %q, want %q", r, margen.RefusedPointHour)
			}
			if err := db.CountSurveyRefused(ctx, o.ID, p.ID, margen.RefusedToken, now); err != nil {
				t.Fatal(err)
			}
			counts, err := db.SurveyRefused(ctx, o.ID, now.Add(-2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			by := map[string]int64{}
			for _, c := range counts {
				by[c.Reason] += c.N
			}
			if by[margen.RefusedDevice] != 1 || by[margen.RefusedPointHour] != 1 || by[margen.RefusedToken] != 1 {
				t.Fatalf("refused counts = %v", by)
			}
			if l, _ := db.ListSurveyAnswers(ctx, o.ID, margen.SurveyAnswerFilter{PointID: p.ID}); len(l) != 3 {
				t.Fatalf("point answers = %d, want 3", len(l))
			}
			if rep, err := db.CheckAudit(ctx, o.ID); err != nil || !rep.OK() {
				t.Fatalf("audit after point answers: %+v, %v", rep, err)
			}
		})
	}
}
