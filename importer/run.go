package importer

import (
	"context"
	"encoding/json"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// Store is what an import needs from the store.
type Store interface {
	margen.ImportStore
	ListTeams(ctx context.Context, orgID string) ([]margen.Team, error)
	ActivePolicy(ctx context.Context, orgID string) (*margen.PolicyVersion, error)
}

// Options configure Run.
type Options struct {
	Kind        string
	Org         *margen.Org
	Actor       string // audit actor: a member id, or "cli"
	ActorAccess string // the importer's access level
	DryRun      bool
	SkipBad     bool
	Now         time.Time
	// Progress, when set, is called as records are written, with how many
	// are done and how many there are in all.
	Progress func(done, total int)
}

// errBadLines is the error of an import refused as a whole because some
// lines are bad (and SkipBad was not set); the report lists them.
func errBadLines(n int) error {
	return margen.Errorf(margen.EINVALID, "error.import_bad_lines", "count", n)
}

// Run parses and checks the file, then reads the existing records and
// writes the changes in one transaction (see the package documentation).
// A refused file returns its report (listing the bad lines) with an
// EINVALID "error.import_bad_lines" error; a problem with the file as a
// whole returns no report.
func Run(ctx context.Context, st Store, data []byte, opt Options) (*Report, error) {
	f, err := Parse(opt.Kind, data)
	if err != nil {
		return nil, err
	}
	env := Env{Org: opt.Org, Actor: opt.Actor, ActorAccess: opt.ActorAccess, Now: opt.Now}
	if env.Now.IsZero() {
		env.Now = time.Now()
	}
	if opt.Kind == margen.ImportMembers {
		if env.Teams, env.Roles, err = references(ctx, st, opt.Org.ID); err != nil {
			return nil, err
		}
	}
	f.Check(env)
	var rep *Report
	// A file already known to be refused as a whole writes nothing: it is
	// compared like a dry run, without locking anything.
	readOnly := opt.DryRun || (len(f.Errors) > 0 && !opt.SkipBad)
	err = st.Import(ctx, margen.ImportQuery{OrgID: opt.Org.ID, Kind: opt.Kind, Keys: f.Keys(), DryRun: readOnly},
		func(s *margen.ImportState) (*margen.ImportWrite, error) {
			var w *margen.ImportWrite
			rep, w = Plan(f, env, s, opt.DryRun, opt.SkipBad)
			if w != nil && opt.Progress != nil {
				total := len(w.Customers) + len(w.Members) + len(w.Teams)
				opt.Progress(0, total)
				w.Progress = func(done int) { opt.Progress(done, total) }
			}
			return w, nil
		})
	if err != nil {
		return nil, err
	}
	if rep.Bad > 0 && !opt.SkipBad && !opt.DryRun {
		return rep, errBadLines(rep.Bad)
	}
	return rep, nil
}

// references reads the organisation's team slugs and the roles of its
// active policy.
func references(ctx context.Context, st Store, orgID string) (teams, roles map[string]bool, err error) {
	ts, err := st.ListTeams(ctx, orgID)
	if err != nil {
		return nil, nil, err
	}
	teams = make(map[string]bool, len(ts))
	for _, t := range ts {
		teams[t.Slug] = true
	}
	pv, err := st.ActivePolicy(ctx, orgID)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, nil, headerErr("error.import_no_policy")
	}
	if err != nil {
		return nil, nil, err
	}
	pol, err := policy.Parse([]byte(pv.Source))
	if err != nil {
		return nil, nil, err
	}
	roles = make(map[string]bool)
	for _, r := range pol.Roles() {
		roles[r.ID] = true
	}
	return teams, roles, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("importer: audit data: " + err.Error()) // plain values built here
	}
	return b
}
