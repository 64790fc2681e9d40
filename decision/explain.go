package decision

import (
	"context"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// Explain evaluates a request exactly as Decide would, against the balances
// as they are now, and records nothing. The returned decision has no id.
func (e *Engine) Explain(ctx context.Context, req *Request) (*margen.Decision, error) {
	// Explain is not on the hot path: make sure it answers with the version
	// active now, even if another process published it.
	if req.Org != nil {
		if _, err := e.policy(ctx, req.Org.ID, true); err != nil {
			return nil, err
		}
	}
	p, err := e.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	r := p.req
	used := map[margen.BudgetKey]int64{}
	for _, k := range p.keys {
		accts, err := e.store.ListBudgets(ctx, r.Org.ID, margen.BudgetFilter{BudgetID: k.BudgetID, Subject: k.Subject, Period: k.Period})
		if err != nil {
			return nil, err
		}
		for _, a := range accts {
			used[a.BudgetKey] = a.Used()
		}
	}
	cus, err := e.store.CustomerByID(ctx, r.Org.ID, p.cusID)
	isNew := margen.IsCode(err, margen.ENOTFOUND)
	switch {
	case isNew:
		cus = &margen.Customer{ID: p.cusID, Ref: r.Customer.Ref, Tags: tags(r.Customer.Tags)}
	case err != nil:
		return nil, err
	}
	v, err := p.verdict(nil, *cus, isNew, func(k policy.BudgetKey) int64 {
		return used[margen.BudgetKey{BudgetID: k.BudgetID, Subject: k.Subject, Period: k.Period}]
	})
	if err != nil {
		return nil, err
	}
	return newDecision(p, *cus, v), nil
}
