package demo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/margenhq/margen"
)

// The customer's voice in the history: survey links made at the counter
// after some acts and answered hours later, and answers through the
// standing QR codes of the restaurant. Satisfaction rises over the period,
// as it did in the pilot stores (from about 68% to 83% satisfied, a 4 or 5
// of 5). Everything is written through the store's survey methods, so the
// answers are sealed and audited like those from the public page.

// Survey draws use their own random source, so adding them leaves the rest
// of the history (decisions, reactions) as it was for a seed.
const surveyStream = 0x5ca1ab1e

// satisfiedShare is the share of satisfied answers (4 or 5) at a point of
// the period.
func satisfiedShare(progress float64) float64 { return 0.68 + 0.15*progress }

// csat draws a CSAT score (1 to 5) for a point of the period.
func csat(r *rand.Rand, progress float64) int {
	if r.Float64() < satisfiedShare(progress) {
		if r.Float64() < 0.6 {
			return 5
		}
		return 4
	}
	switch x := r.Float64(); {
	case x < 0.55:
		return 3
	case x < 0.8:
		return 2
	}
	return 1
}

// surveyComment is what a customer writes with a score, often nothing;
// every low answer but a few says why.
func surveyComment(r *rand.Rand, score int) string {
	switch {
	case score <= 2:
		if r.Float64() < 0.85 {
			return oneOf(r, surveyLow)
		}
	case score == 3:
		if r.Float64() < 0.3 {
			return oneOf(r, surveyMiddle)
		}
	default:
		if r.Float64() < 0.25 {
			return oneOf(r, surveyHigh)
		}
	}
	return ""
}

// The comments, in the voice of the customers of a ribs restaurant and its
// contact centre.
var surveyLow = []string{
	"Pedí otra canasta de pan y me dijeron que no estaban autorizados para darla.",
	"El mesero no podía decidir nada, tuvimos que esperar al administrador.",
	"Las costillas llegaron frías y nadie se hizo cargo.",
	"Tuve que explicar el problema tres veces y al final no me lo resolvieron.",
	"Nos cobraron el pan extra sin avisar. Por una canasta de pan perdieron una mesa de seis.",
	"Me trasladaron de un área a otra y nadie me dio una respuesta.",
	"Mucha espera para pagar la cuenta.",
	"Por políticas de la compañía no se puede, me dijeron. No volvemos.",
}

var surveyMiddle = []string{
	"Buena comida, pero el servicio fue lento.",
	"Bien, aunque tuvimos que pedir dos veces lo mismo.",
	"Correcto, nada especial.",
}

var surveyHigh = []string{
	"Nos trajeron otra canasta de pan sin tener que pedir permiso a nadie. ¡Así sí!",
	"El mesero resolvió todo en el momento. Volveremos.",
	"Excelente atención, se notó que querían dejarnos contentos.",
	"Me solucionaron el problema en la primera llamada.",
	"Las mejores costillas BBQ y una atención de primera.",
}

// surveyPoints are the standing QR codes of the demo: on a table, at the
// cash desk and at the door, with who served asked at the table.
var surveyPoints = []struct {
	name, kind string
	askServer  bool
	perDay     float64 // mean answers a day at the start
}{
	{"Mesa 4", margen.PointTable, true, 0.7},
	{"Caja", margen.PointCounter, false, 1.2},
	{"Entrada principal", margen.PointSite, false, 0.4},
}

// surveyTokens returns the token maker of the demo: the installation's key
// when given (so the printed codes scan on its server), else a random one.
func surveyTokens(key []byte) *margen.SurveyTokens {
	if len(key) == 0 {
		key = make([]byte, 32)
		crand.Read(key)
	}
	return margen.NewSurveyTokens(key)
}

// createSurveyPoints creates the standing QR codes at setup.
func (g *generator) createSurveyPoints(ctx context.Context, owner *margen.Member, tick func() time.Time, res *Result) error {
	for _, sp := range surveyPoints {
		tok, hash := g.tokens.New()
		p := &margen.SurveyPoint{OrgID: g.org.ID, Name: sp.name, Kind: sp.kind, Team: teamRestaurant, Token: tok,
			TokenHash: hash, AskServer: sp.askServer, CreatedBy: owner.ID, CreatedAt: tick()}
		if err := g.ss.CreateSurveyPoint(ctx, p, owner.ID); err != nil {
			return fmt.Errorf("demo: survey point: %w", err)
		}
		g.points = append(g.points, p)
		res.SurveyPoints++
	}
	return nil
}

// schedulePointAnswers plans a day's answers through the standing QR codes,
// at the restaurant's hours; each from another phone (its own device hash).
func (g *generator) schedulePointAnswers(date time.Time, progress float64, res *Result) {
	r := g.srng
	for i, p := range g.points {
		mean := surveyPoints[i].perDay * (1 + 0.5*progress)
		for range g.poissonWith(r, mean) {
			at := date.Add(time.Duration((12 + r.Float64()*10) * float64(time.Hour))).Truncate(time.Second)
			score := csat(r, progress)
			comment := surveyComment(r, score)
			var dev [16]byte
			for j := range dev {
				dev[j] = byte(r.UintN(256))
			}
			var served *margen.Member
			if p.AskServer && r.Float64() < 0.7 {
				if ws := g.byRole["mesero"]; len(ws) > 0 {
					served = ws[r.IntN(len(ws))]
				}
			}
			if at.After(g.now) {
				continue
			}
			g.schedule(at, func(ctx context.Context) error {
				a, err := margen.NewSurveyAnswer(margen.ScaleCSAT, score, comment, Language)
				if err != nil {
					return fmt.Errorf("demo: survey answer: %w", err)
				}
				a.OrgID, a.PointID, a.Team, a.Device, a.CreatedAt = g.org.ID, p.ID, p.Team, hex.EncodeToString(dev[:]), at
				if served != nil {
					a.MemberID, a.Team = served.ID, served.Team
				}
				a.ID = margen.NewID("sva")
				refused, err := g.ss.AnswerSurvey(ctx, &a, margen.SurveyLimits{})
				if err != nil {
					return fmt.Errorf("demo: survey answer: %w", err)
				}
				if refused == "" {
					res.SurveyAnswers++
					g.scheduleFollowUp(&a)
				}
				return nil
			})
		}
	}
}

// scheduleLinkSurvey has the member make a survey link right after an act
// and the customer answer it hours later (or never).
func (g *generator) scheduleLinkSurvey(d *margen.Decision, m *margen.Member, at time.Time, progress float64, res *Result) {
	r := g.srng
	made := at.Add(time.Duration(1+r.IntN(10)) * time.Minute)
	answers := r.Float64() < 0.55
	answered := made.Add(time.Duration(10+r.IntN(36*60)) * time.Minute)
	score := csat(r, progress)
	comment := surveyComment(r, score)
	if made.After(g.now) {
		return
	}
	_, hash := g.tokens.New() // the token itself was shown once, as a QR code
	l := &margen.SurveyLink{OrgID: g.org.ID, TokenHash: hash, ActID: d.ActID, MemberID: m.ID, CustomerID: d.CustomerID,
		Team: m.Team, CreatedBy: m.ID, CreatedAt: made, ExpiresAt: made.Add(margen.DefaultSurveyExpiry)}
	g.schedule(made, func(ctx context.Context) error {
		if err := g.ss.CreateSurveyLink(ctx, l, m.ID, nil); err != nil {
			return fmt.Errorf("demo: survey link: %w", err)
		}
		res.SurveyLinks++
		return nil
	})
	if !answers || answered.After(g.now) {
		return
	}
	g.schedule(answered, func(ctx context.Context) error {
		a, err := margen.NewSurveyAnswer(margen.ScaleCSAT, score, comment, Language)
		if err != nil {
			return fmt.Errorf("demo: survey answer: %w", err)
		}
		a.OrgID, a.LinkID, a.ActID, a.MemberID, a.CustomerID, a.Team = l.OrgID, l.ID, l.ActID, l.MemberID, l.CustomerID, l.Team
		a.ID, a.CreatedAt = margen.NewID("sva"), answered
		if _, err := g.ss.AnswerSurvey(ctx, &a, margen.SurveyLimits{}); err != nil {
			return fmt.Errorf("demo: survey answer: %w", err)
		}
		res.SurveyAnswers++
		g.scheduleFollowUp(&a)
		return nil
	})
}

// What supervisors wrote when they closed a follow-up case.
var caseActions = []string{
	"Llamé a la clienta, pedí disculpas y la invité a un postre en su próxima visita.",
	"Hablé con el cliente por teléfono: le devolvimos el importe del plato.",
	"Le escribimos para disculparnos; el mesero ya sabe que puede cambiar el plato sin preguntar.",
	"Revisamos el caso con el equipo: la demora fue en cocina. Le ofrecimos un café de cortesía.",
	"No contestó a dos llamadas; dejamos un mensaje con nuestras disculpas.",
}

// scheduleFollowUp has the supervisor close most low answers' cases within
// a day, as the pilot stores did; the newest stay open in the inbox.
func (g *generator) scheduleFollowUp(a *margen.SurveyAnswer) {
	cs, ok := g.ss.(margen.CaseStore)
	if !ok || margen.CaseFor(a, margen.CaseRule{}) == nil {
		return
	}
	r := g.srng
	if r.Float64() < 0.1 {
		return // forgotten: escalated to the owners when its SLA passed
	}
	at := a.CreatedAt.Add(time.Duration(60+r.IntN(20*60)) * time.Minute)
	if at.After(g.now) {
		return
	}
	i := r.IntN(len(caseActions))
	x := margen.CaseClose{Action: caseActions[i], Outcome: margen.CaseResolved, Reaction: margen.ReactionPositive}
	switch {
	case i == len(caseActions)-1:
		x.Outcome, x.Reaction = margen.CaseNoContact, margen.ReactionNeutral
	case r.Float64() < 0.2:
		x.Outcome, x.Reaction = margen.CaseUnresolved, margen.ReactionNegative
	}
	answerID, team := a.ID, a.Team
	g.schedule(at, func(ctx context.Context) error {
		cases, err := cs.ListCases(ctx, g.org.ID, margen.CaseFilter{AnswerID: answerID, Page: margen.Page{Limit: 1}})
		if err != nil || len(cases) == 0 || cases[0].Status != margen.CaseOpen {
			return err
		}
		by := g.byRole["owner"][0]
		for _, role := range slices.Sorted(maps.Keys(g.byRole)) {
			for _, m := range g.byRole[role] {
				if m.Team == team && m.Access == margen.AccessSupervisor {
					by = m
				}
			}
		}
		if _, err := cs.CloseCase(ctx, g.org.ID, cases[0].ID, x, by.ID, at); err != nil {
			return fmt.Errorf("demo: close case: %w", err)
		}
		return nil
	})
}
