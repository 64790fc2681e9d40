package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/currency"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/demo"
	"github.com/margenhq/margen/store"
)

// actor names the CLI in the audit trail.
const actor = "cli"

var (
	slugPattern  = regexp.MustCompile(`^[a-z0-9-]{2,40}$`)
	loginPattern = regexp.MustCompile(`^[a-z0-9._-]{2,40}$`)
	rolePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// openStore opens the database. Only serve, migrate and demo create or
// migrate it; the other commands refuse a missing or stale one, so a typo in
// --db does not silently create a new empty database.
func openStore(ctx context.Context, cfg config, log *slog.Logger, migrate bool) (*store.DB, error) {
	st, err := store.Open(ctx, cfg.DB, store.Options{Migrate: migrate, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", maskDSN(cfg.DB), err)
	}
	return st, nil
}

// openOrg opens the database (which must exist and be migrated) and finds
// the organisation named by --org; the caller closes the store.
func openOrg(ctx context.Context, a *app, cfg config, slug string) (*store.DB, *margen.Org, error) {
	st, err := openStore(ctx, cfg, cfg.logger(a.stderr), false)
	if err != nil {
		return nil, nil, err
	}
	org, err := orgBySlug(ctx, st, slug)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, org, nil
}

// orgBySlug finds an organisation, with a message naming the flag.
func orgBySlug(ctx context.Context, st margen.Store, slug string) (*margen.Org, error) {
	org, err := st.OrgBySlug(ctx, slug)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, fmt.Errorf("--org: no organisation with slug %q", slug)
	}
	return org, err
}

func memberByLogin(ctx context.Context, st margen.Store, org *margen.Org, login string) (*margen.Member, error) {
	m, err := st.MemberByLogin(ctx, org.ID, login)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, fmt.Errorf("--member: no member with login %q in %s", login, org.Slug)
	}
	return m, err
}

func checkSlug(flag, v string) error {
	if !slugPattern.MatchString(v) {
		return fmt.Errorf("--%s: %q is not a valid slug: use 2 to 40 lowercase letters, digits and -", flag, v)
	}
	return nil
}

func checkLogin(flag, v string) error {
	if !loginPattern.MatchString(v) {
		return fmt.Errorf("--%s: %q is not a valid login: use 2 to 40 lowercase letters, digits, '.', '_' and '-'", flag, v)
	}
	return nil
}

func checkName(flag, v string) error {
	v = strings.TrimSpace(v)
	if v == "" || utf8.RuneCountInString(v) > 200 {
		return fmt.Errorf("--%s: give a name of 1 to 200 characters", flag)
	}
	return nil
}

func checkLanguage(flag, v string) error {
	if v != "es" && v != "en" {
		return fmt.Errorf("--%s: %q is not supported: use es or en", flag, v)
	}
	return nil
}

// checkCurrency accepts an ISO 4217 code that golang.org/x/text/currency
// knows, in upper case as stored.
func checkCurrency(flag, v string) (string, error) {
	code := strings.ToUpper(strings.TrimSpace(v))
	u, err := currency.ParseISO(code)
	// XXX ("no currency") and XTS (testing) are codes, not currencies.
	if err != nil || len(code) != 3 || u.String() != code || code == "XXX" || code == "XTS" {
		return "", fmt.Errorf("--%s: %q is not an ISO 4217 currency code (for example COP, CRC, MXN, EUR, USD)", flag, v)
	}
	return code, nil
}

func checkTimezone(flag, v string) error {
	if v == "" || v == "Local" {
		return fmt.Errorf("--%s: give an IANA time zone such as America/Bogota", flag)
	}
	if _, err := time.LoadLocation(v); err != nil {
		return fmt.Errorf("--%s: %q is not a known time zone: use an IANA name such as America/Bogota or Europe/Madrid", flag, v)
	}
	return nil
}

// newPassword returns a one-time password and its argon2id hash.
func newPassword() (plain, hash string, err error) {
	plain = auth.NewPassword()
	hash, err = auth.HashPassword(plain)
	return plain, hash, err
}

func cmdMigrate(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("migrate", "", `Creates the database if needed and applies the pending schema migrations.
It is safe to run it again: an up-to-date database is left as it is.
(serve also migrates on start.)

Before it upgrades an existing database it protects it: a SQLite database
is first copied and the copy verified (into --backup-dir, or next to the
database file; the path is printed); on PostgreSQL it stops and prints the
pg_dump command to run, unless --yes is given. It refuses a database whose
schema is newer than this margen knows.

Example:
  margen migrate --db ./margen.db
  MARGEN_DB=postgres://margen:secret@db/margen margen migrate --yes`)
	fs.dbFlag(&cfg)
	fs.logFlags(&cfg)
	fs.StringVar(&cfg.BackupDir, "backup-dir", cfg.BackupDir, "directory for the copy of a SQLite database taken before it is upgraded; empty: next to the database file (env MARGEN_BACKUP_DIR)")
	yes := fs.Bool("yes", false, "upgrade a PostgreSQL database without stopping to ask for a backup first")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if err := beforeUpgrade(ctx, a.stdout, cfg, *yes); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, cfg.logger(a.stderr), true)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(a.stdout, "database %s (%s) is up to date\n", maskDSN(cfg.DB), st.Engine())
	return nil
}

func cmdOrgCreate(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("org create", "", `Creates an organisation and its owner (access owner, policy role "owner"),
and prints the owner's password once.

Example:
  margen org create --slug la-brasa --name "Grupo La Brasa" --currency COP \
      --timezone America/Bogota --owner lucia --owner-name "Lucía Ramírez"`)
	fs.dbFlag(&cfg)
	slug := fs.String("slug", "", "identifier of the organisation: 2-40 of a-z, 0-9 and - (required)")
	name := fs.String("name", "", "name of the organisation (required)")
	cur := fs.String("currency", "", "ISO 4217 currency of its amounts, e.g. COP, MXN, EUR (required)")
	tz := fs.String("timezone", "", "IANA time zone its budget periods follow, e.g. America/Bogota (required)")
	owner := fs.String("owner", "", "login of the owner: 2-40 of a-z, 0-9, '.', '_' and '-' (required)")
	ownerName := fs.String("owner-name", "", "full name of the owner (default: the login)")
	lang := fs.String("language", "es", "language of the organisation: es or en")
	fs.require("slug", "name", "currency", "timezone", "owner")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	code, err := checkCurrency("currency", *cur)
	if err != nil {
		return err
	}
	if err := errors.Join(checkSlug("slug", *slug), checkName("name", *name), checkTimezone("timezone", *tz),
		checkLogin("owner", *owner), checkLanguage("language", *lang)); err != nil {
		return err
	}
	if *ownerName == "" {
		*ownerName = *owner
	}
	st, err := openStore(ctx, cfg, cfg.logger(a.stderr), false)
	if err != nil {
		return err
	}
	defer st.Close()

	password, hash, err := newPassword()
	if err != nil {
		return err
	}
	org := &margen.Org{Slug: *slug, Name: strings.TrimSpace(*name), Currency: code, Timezone: *tz, Language: *lang}
	m := &margen.Member{Login: *owner, Name: *ownerName, Access: margen.AccessOwner, Role: "owner",
		Language: *lang, Active: true, PasswordHash: hash}
	if err := st.CreateOrg(ctx, org, m, actor); err != nil {
		if margen.IsCode(err, margen.ECONFLICT) {
			return fmt.Errorf("--slug: an organisation with slug %q already exists", *slug)
		}
		return err
	}
	fmt.Fprintf(a.stdout, "created organisation %s (%s; %s, %s, %s)\n", org.Slug, org.Name, org.Currency, org.Timezone, org.Language)
	fmt.Fprintf(a.stdout, "owner: login %s, password %s (shown once: note it now)\n", m.Login, password)
	fmt.Fprintf(a.stdout, "next:  margen policy publish --org %s policy.yaml\n", org.Slug)
	return nil
}

func cmdTeamAdd(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("team add", "", `Adds a team or site to an organisation. Policy grants can be limited to
teams by their slug.

Example:
  margen team add --org la-brasa --slug restaurante --name "La Brasa — Costillas BBQ"`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	slug := fs.String("slug", "", "identifier of the team: 2-40 of a-z, 0-9 and - (required)")
	name := fs.String("name", "", "name of the team (required)")
	fs.require("org", "slug", "name")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if err := errors.Join(checkSlug("slug", *slug), checkName("name", *name)); err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	t := &margen.Team{OrgID: org.ID, Slug: *slug, Name: strings.TrimSpace(*name)}
	if err := st.CreateTeam(ctx, t, actor); err != nil {
		if margen.IsCode(err, margen.ECONFLICT) {
			return fmt.Errorf("--slug: %s already has a team %q", org.Slug, *slug)
		}
		return err
	}
	fmt.Fprintf(a.stdout, "added team %s (%s) to %s\n", t.Slug, t.Name, org.Slug)
	return nil
}

func cmdMemberAdd(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("member add", "", `Adds a member to an organisation and prints their password once.

--access is what they may administer in margen (owner > manager >
supervisor > frontline); --role is their role in the latitude policy, which
decides what they may do for a customer. The role must exist in the policy
before it is published.

Example:
  margen member add --org la-brasa --login camila --name "Camila Rojas" \
      --access frontline --role mesero --team restaurante`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	login := fs.String("login", "", "login: 2-40 of a-z, 0-9, '.', '_' and '-' (required)")
	name := fs.String("name", "", "full name (required)")
	access := fs.String("access", "", "owner, manager, supervisor or frontline (required)")
	role := fs.String("role", "", "role in the latitude policy, e.g. mesero (required)")
	team := fs.String("team", "", "slug of their team or site")
	lang := fs.String("language", "", "language: es or en (default: the organisation's)")
	fs.require("org", "login", "name", "access", "role")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	var errs []error
	errs = append(errs, checkLogin("login", *login), checkName("name", *name))
	if margen.AccessRank(*access) == 0 {
		errs = append(errs, fmt.Errorf("--access: %q is not an access level: use owner, manager, supervisor or frontline", *access))
	}
	if !rolePattern.MatchString(*role) {
		errs = append(errs, fmt.Errorf("--role: %q is not a valid role id: use lowercase letters, digits and _, starting with a letter", *role))
	}
	if *lang != "" {
		errs = append(errs, checkLanguage("language", *lang))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	if *team != "" {
		teams, err := st.ListTeams(ctx, org.ID)
		if err != nil {
			return err
		}
		var slugs []string
		found := false
		for _, t := range teams {
			slugs = append(slugs, t.Slug)
			found = found || t.Slug == *team
		}
		if !found {
			return fmt.Errorf("--team: %s has no team %q (teams: %s); add it with margen team add", org.Slug, *team, orList(slugs))
		}
	}
	if *lang == "" {
		*lang = org.Language
	}
	password, hash, err := newPassword()
	if err != nil {
		return err
	}
	m := &margen.Member{OrgID: org.ID, Login: *login, Name: strings.TrimSpace(*name), Access: *access, Role: *role,
		Team: *team, Language: *lang, Active: true, PasswordHash: hash}
	if err := st.CreateMember(ctx, m, actor); err != nil {
		if margen.IsCode(err, margen.ECONFLICT) {
			return fmt.Errorf("--login: %s already has a member %q", org.Slug, *login)
		}
		return err
	}
	where := ""
	if m.Team != "" {
		where = ", team " + m.Team
	}
	fmt.Fprintf(a.stdout, "added %s (%s) to %s: access %s, role %s%s\n", m.Login, m.Name, org.Slug, m.Access, m.Role, where)
	fmt.Fprintf(a.stdout, "password: %s (shown once: give it to them now)\n", password)
	return nil
}

func orList(xs []string) string {
	if len(xs) == 0 {
		return "none yet"
	}
	return strings.Join(xs, ", ")
}

// createToken stores a new API token for a member and returns it in clear.
func createToken(ctx context.Context, st margen.Store, org *margen.Org, m *margen.Member, name string) (string, error) {
	plain, hash := auth.NewToken()
	t := &margen.Token{OrgID: org.ID, MemberID: m.ID, Hash: hash, Name: name}
	if err := st.CreateToken(ctx, t, actor); err != nil {
		return "", err
	}
	return plain, nil
}

func cmdTokenCreate(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("token create", "", `Creates an API token for a member and prints it on standard output, alone,
once: only its hash is stored. Use it as "Authorization: Bearer TOKEN".

Example:
  TOKEN=$(margen token create --org la-brasa --member camila --name tablet-salon)`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	login := fs.String("member", "", "login of the member the token acts as (required)")
	name := fs.String("name", "cli", "what the token is for, e.g. the device")
	fs.require("org", "member")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if err := checkName("name", *name); err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := memberByLogin(ctx, st, org, *login)
	if err != nil {
		return err
	}
	if !m.Active {
		return fmt.Errorf("--member: %s is not active", m.Login)
	}
	tok, err := createToken(ctx, st, org, m, *name)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "API token %q for %s in %s (shown once; only its hash is stored):\n", *name, m.Login, org.Slug)
	fmt.Fprintln(a.stdout, tok)
	return nil
}

func cmdDemo(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("demo", "", `Loads the demo organisation "Grupo La Brasa" (slug demo): a BBQ ribs
restaurant and its 20-seat contact centre in Bogotá, with 12 members, 60
customers, a latitude policy and 90 days of history made through the real
decision engine. It migrates the database first.

It prints how to sign in (login admin; the password only on the first
load), a new API token for admin and one for the waiter camila on every
run, and a curl command for a decision. Running it again adds no data.

Example:
  margen demo --db ./demo.db && margen serve --db ./demo.db`)
	fs.dbFlag(&cfg)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address of the server, for the curl example (env MARGEN_ADDR)")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	log := cfg.logger(a.stderr)
	st, err := openStore(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer st.Close()

	start := time.Now()
	res, err := demo.Load(ctx, st, demo.Options{Out: a.stderr})
	if err != nil {
		return fmt.Errorf("load the demo: %w", err)
	}
	w := a.stdout
	if res.AlreadyLoaded {
		fmt.Fprintf(w, "The demo organisation is already loaded: %s (slug %s). Nothing was added.\n", res.Org.Name, res.Org.Slug)
		fmt.Fprintf(w, "Sign in as %q with the password printed on the first load.\n", res.AdminLogin)
	} else {
		fmt.Fprintf(w, "Loaded %s (slug %s) in %s:\n", res.Org.Name, res.Org.Slug, time.Since(start).Round(100*time.Millisecond))
		fmt.Fprintf(w, "  %d teams, %d members, %d customers, policy version %d\n", res.Teams, res.Members, res.Customers, res.PolicyVersion)
		fmt.Fprintf(w, "  %d decisions from %s to %s: %d allowed (%d flagged), %d denied, %d asked for approval (%d approved, %d rejected, %d still open)\n",
			res.Decisions, res.From.Format("2006-01-02"), res.To.AddDate(0, 0, -1).Format("2006-01-02"), res.Allowed, res.Flagged, res.Denied,
			res.NeedsApproval, res.Approved, res.Rejected, res.NeedsApproval-res.Approved-res.Rejected)
		fmt.Fprintf(w, "  %d customer reactions, %d other refusals\n\n", res.Reactions, res.Refusals)
		fmt.Fprintf(w, "Sign in: login %s, password %s (shown once: note it now)\n", res.AdminLogin, res.AdminPassword)
	}
	tokens := map[string]string{}
	for _, login := range []string{demo.AdminLogin, "camila"} {
		m, err := memberByLogin(ctx, st, res.Org, login)
		if err != nil {
			return err
		}
		tok, err := createToken(ctx, st, res.Org, m, "demo")
		if err != nil {
			return err
		}
		tokens[login] = tok
	}
	fmt.Fprintf(w, "\nAPI tokens (new on every run, shown once):\n")
	fmt.Fprintf(w, "  admin  (owner):           %s\n", tokens[demo.AdminLogin])
	fmt.Fprintf(w, "  camila (mesero, salón):   %s\n", tokens["camila"])
	fmt.Fprintf(w, "  more:  margen token create --db %s --org %s --member valentina\n", cfg.DB, res.Org.Slug)
	fmt.Fprintf(w, "\nStart the server with:\n  margen serve --db %s --addr %s\n", cfg.DB, cfg.Addr)
	fmt.Fprintf(w, "\nThen ask, as Camila, for a second bread basket for a table of six (amounts in centavos):\n")
	fmt.Fprintf(w, `  curl -s http://%s/api/v1/decisions \
    -H 'Authorization: Bearer %s' \
    -H 'Content-Type: application/json' \
    -H "Idempotency-Key: $(date +%%s%%N)" \
    -d '{"action":"cortesia","amount":800000,"customer":{"ref":"mesa-12"},"reason":"Segunda canasta de pan para mesa de 6","context":{"order_total":33000000,"diners":6}}'
`, cfg.Addr, tokens["camila"])
	fmt.Fprintf(w, "\nOr ask without recording anything:\n  margen policy explain --db %s --org %s --member camila --action cortesia --amount 800000 --context '{\"order_total\":33000000}'\n",
		cfg.DB, res.Org.Slug)
	return nil
}
