package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// customerOf finds a customer by id (cus_…) or, failing that, by reference.
func customerOf(ctx context.Context, st *store.DB, org *margen.Org, key string) (*margen.Customer, error) {
	c, err := st.CustomerByID(ctx, org.ID, key)
	if margen.IsCode(err, margen.ENOTFOUND) {
		c, err = st.CustomerByID(ctx, org.ID, margen.CustomerID(org.ID, key))
	}
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, fmt.Errorf("no customer %q in %s", key, org.Slug)
	}
	return c, err
}

func cmdCustomerExport(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("customer export", "", `Writes everything margen holds about one customer as one JSON object to
standard output (or --out): the customer, their decisions, acts, reactions,
refusals, approval requests and their history, ledger entries, survey links,
answers and cases, and the audit entries about them (see docs/api.md,
GET /api/v1/customers/{id}/export). Each list stops at 100,000 rows and is
then named under "truncated".

Example:
  margen customer export --org la-brasa --customer cus_5956f5de01d623e534a56c708bcd29d0 > cliente.json`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	key := fs.String("customer", "", "the customer's id (cus_…) or reference (required)")
	out := fs.String("out", "", "file to write (default: standard output)")
	fs.require("org", "customer")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := customerOf(ctx, st, org, *key)
	if err != nil {
		return err
	}
	w := a.stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	ex := margen.NewPersonalExport(bw, time.Now())
	if err := st.ExportCustomer(ctx, org.ID, c.ID, ex.Add); err != nil {
		return err
	}
	if err := ex.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stderr, "exported customer %s of %s\n", c.ID, org.Slug)
	return nil
}

func cmdCustomerErase(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("customer erase", "", `Erases one customer's personal data: their name, contact, tags and reference,
and the free text written about them (reasons, notes, comments, what they
wanted, what was done in their cases). Scores, amounts, outcomes, times,
members and teams stay, so statistics still count them. One audit entry
(customer.erase, counts only) commits to every row changed, so
"margen ledger check" still passes. It cannot be undone: without --yes it
asks to type "yes". Erasing an erased customer changes nothing.

Example:
  margen customer erase --org la-brasa --customer cus_5956f5de01d623e534a56c708bcd29d0 --yes`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	key := fs.String("customer", "", "the customer's id (cus_…) or reference (required)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	fs.require("org", "customer")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := customerOf(ctx, st, org, *key)
	if err != nil {
		return err
	}
	if c.Erased() {
		fmt.Fprintf(a.stdout, "customer %s of %s was erased already: nothing changed\n", c.ID, org.Slug)
		return nil
	}
	if !*yes {
		fmt.Fprintf(a.stderr, "Erase the personal data of customer %s (%s) in %s? This cannot be undone. Type yes: ",
			c.ID, c.Ref, org.Slug)
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return fmt.Errorf("not erased: confirmation not given")
		}
	}
	res, err := st.EraseCustomer(ctx, org.ID, c.ID, "cli", time.Now(), nil)
	if err != nil {
		return err
	}
	if !res.Erased {
		fmt.Fprintf(a.stdout, "customer %s of %s was erased already: nothing changed\n", c.ID, org.Slug)
		return nil
	}
	tables := make([]string, 0, len(res.Rows))
	for t := range res.Rows {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = fmt.Sprintf("%s %d", t, res.Rows[t])
	}
	fmt.Fprintf(a.stdout, "customer %s of %s erased (rows changed: %s)\n", c.ID, org.Slug, strings.Join(parts, ", "))
	return nil
}
