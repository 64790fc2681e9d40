package webhook

import (
	"net/url"
	"slices"
	"strings"

	"github.com/margenhq/margen"
)

// Bounds of an endpoint.
const (
	MaxURL    = 2000
	MaxEvents = 32
)

// ValidateEndpoint checks an endpoint both doors register (the JSON API
// and the manager's desk): an absolute http or https URL with a host, and
// a non-empty list of known event types, or ["*"] for all. It returns the
// events without repeats.
func ValidateEndpoint(rawURL string, events []string) ([]string, error) {
	switch {
	case rawURL == "":
		return nil, margen.Invalid("url", "error.required", "field", "url")
	case len(rawURL) > MaxURL:
		return nil, margen.Invalid("url", "error.too_long", "field", "url", "max", MaxURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, margen.Invalid("url", "error.webhook_url")
	}
	if len(events) == 0 {
		return nil, margen.Invalid("events", "error.required", "field", "events")
	}
	if len(events) > MaxEvents {
		return nil, margen.Invalid("events", "error.too_many", "field", "events", "max", MaxEvents)
	}
	var out []string
	for _, ev := range events {
		switch {
		case ev == "*" && len(events) == 1:
		case ev == "*":
			return nil, margen.Invalid("events", "error.webhook_wildcard")
		case !slices.Contains(margen.EventTypesAll, margen.EventType(ev)):
			allowed := make([]string, len(margen.EventTypesAll))
			for i, t := range margen.EventTypesAll {
				allowed[i] = string(t)
			}
			return nil, margen.Invalid("events", "error.unknown_event", "event", ev, "allowed", strings.Join(allowed, ", "))
		}
		if !slices.Contains(out, ev) {
			out = append(out, ev)
		}
	}
	return out, nil
}
