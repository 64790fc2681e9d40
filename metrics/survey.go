package metrics

import "github.com/prometheus/client_golang/prometheus"

// SurveyRefused registers margen_survey_refused_total{reason} and returns
// the function that counts one survey answer refused by a limit (for
// web.SurveyOptions.Refused). Call it once per Metrics.
func (m *Metrics) SurveyRefused() func(reason string) {
	if m == nil {
		return func(string) {}
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "margen_survey_refused_total",
		Help: "Survey answers refused by a limit, by reason (address, token, point_hour, device); refused answers are also counted per organisation in the database.",
	}, []string{"reason"})
	m.reg.MustRegister(c)
	return func(reason string) { c.WithLabelValues(reason).Inc() }
}
