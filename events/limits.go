package events

import (
	"sync"

	"github.com/margenhq/margen"
)

// StreamLimits bounds the live streams open at once in this process, per
// member and per organisation, whichever door opened them (the API's
// /api/v1/events and the web pages' streams share one), so one member
// cannot hold thousands of connections (and broker subscriptions) open.
type StreamLimits struct {
	perMember, perOrg int

	mu       sync.Mutex
	byMember map[string]int
	byOrg    map[string]int
}

// Default stream limits (per process).
const (
	DefaultStreamsPerMember = 8
	DefaultStreamsPerOrg    = 500
)

// NewStreamLimits returns limits of perMember and perOrg streams (the
// defaults for values <= 0).
func NewStreamLimits(perMember, perOrg int) *StreamLimits {
	if perMember <= 0 {
		perMember = DefaultStreamsPerMember
	}
	if perOrg <= 0 {
		perOrg = DefaultStreamsPerOrg
	}
	return &StreamLimits{perMember: perMember, perOrg: perOrg, byMember: map[string]int{}, byOrg: map[string]int{}}
}

// Open counts a new stream, or refuses it (ETOOMANY, answered 429 with
// Retry-After) when the member or the organisation is at its limit. The
// returned function ends the count; call it once when the stream ends.
func (c *StreamLimits) Open(orgID, memberID string) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.byMember[memberID] >= c.perMember:
		return nil, margen.Errorf(margen.ETOOMANY, "error.too_many_streams_member", "max", c.perMember)
	case c.byOrg[orgID] >= c.perOrg:
		return nil, margen.Errorf(margen.ETOOMANY, "error.too_many_streams_org", "max", c.perOrg)
	}
	c.byMember[memberID]++
	c.byOrg[orgID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.byMember[memberID]--; c.byMember[memberID] <= 0 {
				delete(c.byMember, memberID)
			}
			if c.byOrg[orgID]--; c.byOrg[orgID] <= 0 {
				delete(c.byOrg, orgID)
			}
		})
	}, nil
}
