package main

import (
	"context"
	"fmt"

	"github.com/margenhq/margen"
)

// cmdMemberActive deactivates or reactivates a member: when someone leaves,
// their tokens stop working and they can no longer ask for decisions.
func cmdMemberActive(active bool) func(ctx context.Context, a *app, args []string) error {
	name, verb := "member deactivate", "Deactivates"
	if active {
		name, verb = "member activate", "Reactivates"
	}
	return func(ctx context.Context, a *app, args []string) error {
		cfg, err := a.config()
		if err != nil {
			return err
		}
		fs := a.flags(name, "", verb+` a member. A deactivated member's API tokens stop working (within the
few seconds the server caches a token) and they can no longer ask for decisions;
their history stays.

Example:
  margen `+name+` --org la-brasa --member camila`)
		fs.dbFlag(&cfg)
		orgSlug := fs.String("org", "", "slug of the organisation (required)")
		login := fs.String("member", "", "login of the member (required)")
		fs.require("org", "member")
		if _, err := fs.parse(args, 0); err != nil {
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
		if err := st.SetMemberActive(ctx, org.ID, m.ID, active, "cli"); err != nil {
			return err
		}
		state := "deactivated"
		if active {
			state = "active again"
		}
		fmt.Fprintf(a.stdout, "%s in %s is %s\n", m.Login, org.Slug, state)
		return nil
	}
}

func cmdTokenList(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("token list", "", `Lists a member's API tokens (ids, names, dates; never the tokens).

Example:
  margen token list --org la-brasa --member camila`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	login := fs.String("member", "", "login of the member (required)")
	fs.require("org", "member")
	if _, err := fs.parse(args, 0); err != nil {
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
	toks, err := st.ListTokens(ctx, org.ID, m.ID)
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		fmt.Fprintf(a.stdout, "%s has no API tokens\n", m.Login)
		return nil
	}
	for _, t := range toks {
		state := "active"
		if t.RevokedAt != nil {
			state = "revoked " + t.RevokedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(a.stdout, "%s  %-20s created %s  %s\n", t.ID, t.Name, t.CreatedAt.Format("2006-01-02 15:04"), state)
	}
	return nil
}

func cmdTokenRevoke(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("token revoke", "TOKEN_ID", `Revokes an API token by its id (see margen token list). It stops working
within the few seconds the server caches a token.

Example:
  margen token revoke --org la-brasa tok_0193...`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	fs.require("org")
	rest, err := fs.parse(args, 1)
	if err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RevokeToken(ctx, org.ID, rest[0], "cli"); err != nil {
		if margen.IsCode(err, margen.ENOTFOUND) {
			return fmt.Errorf("TOKEN_ID: no token %q in %s (margen token list shows the ids)", rest[0], org.Slug)
		}
		return err
	}
	fmt.Fprintf(a.stdout, "token %s revoked\n", rest[0])
	return nil
}
