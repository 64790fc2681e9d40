package metrics

import "github.com/prometheus/client_golang/prometheus"

// Email registers margen_email_total{result} and returns the function that
// counts one attempt to send an email (for mailer.Options.OnResult): sent,
// retry (failed, retried later) or failed (given up). The series of the
// three results exist from the start, at 0, so an alert can read them.
// Call it once per Metrics.
func (m *Metrics) Email() func(result string) {
	if m == nil {
		return func(string) {}
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "margen_email_total",
		Help: "Attempts to send an email (survey links), by result: sent, retry (failed, retried later) or failed (given up).",
	}, []string{"result"})
	for _, r := range []string{"sent", "retry", "failed"} {
		c.WithLabelValues(r)
	}
	m.reg.MustRegister(c)
	return func(result string) { c.WithLabelValues(result).Inc() }
}
