package mailer

import (
	"bytes"
	"html/template"
	"strings"
	"time"

	"github.com/margenhq/margen/i18n"
)

// Message is one mail: plain text and the same in simple HTML.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// SurveyMail is what a survey link's mail says.
type SurveyMail struct {
	Language string // es or en
	Business string // the organisation's name
	URL      string // the survey link
	Expires  time.Time
	Location *time.Location // the organisation's time zone, for the date
}

var surveyHTML = template.Must(template.New("survey").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; max-width: 36em; margin: 1em auto; padding: 0 1em">
<p>{{.Hello}}</p>
<p>{{.Ask}}</p>
<p><a href="{{.URL}}" style="display: inline-block; padding: .6em 1.2em; background: #1d6b48; color: #fff; text-decoration: none; border-radius: .3em">{{.Button}}</a></p>
<p style="font-size: .9em; color: #555">{{.Expires}}<br>{{.URL}}</p>
<p style="font-size: .9em; color: #555">{{.Footer}}</p>
</body></html>
`))

// ComposeSurvey writes the mail of a survey link in its language through
// the message catalogue. The HTML part is html/template: the business's
// name and the link are escaped.
func ComposeSurvey(cat *i18n.Catalog, to string, m SurveyMail) (Message, error) {
	lang := m.Language
	args := map[string]any{"business": m.Business}
	loc := m.Location
	if loc == nil {
		loc = time.UTC
	}
	exp := map[string]any{"date": m.Expires.In(loc).Format("2006-01-02")}
	v := struct {
		Lang, Subject, Hello, Ask, Button, Expires, Footer, URL string
	}{Lang: lang, Subject: cat.T(lang, "mail.survey.subject", args), Hello: cat.T(lang, "mail.survey.hello", args),
		Ask: cat.T(lang, "mail.survey.ask", args), Button: cat.T(lang, "mail.survey.button", nil),
		Expires: cat.T(lang, "mail.survey.expires", exp), Footer: cat.T(lang, "mail.survey.footer", args), URL: m.URL}
	var h bytes.Buffer
	if err := surveyHTML.Execute(&h, v); err != nil {
		return Message{}, err
	}
	text := strings.Join([]string{v.Hello, "", v.Ask, "", m.URL, "", v.Expires, "", "-- ", v.Footer}, "\n") + "\n"
	return Message{To: to, Subject: v.Subject, Text: text, HTML: h.String()}, nil
}
