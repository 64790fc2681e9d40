package decision

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// MemberLister is what CheckPolicy reads of the store.
type MemberLister interface {
	ListMembers(ctx context.Context, orgID string) ([]margen.Member, error)
}

// parseSlots bounds the policy documents parsed at once by either door: a
// document within the limits costs at most some tens of milliseconds and
// megabytes, and the slots keep a stream of them from taking every core
// and the memory that other tenants' decisions need.
var parseSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// ParsePolicy parses a policy while holding one of the parse slots.
func ParsePolicy(ctx context.Context, src []byte) (*policy.Policy, error) {
	select {
	case parseSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-parseSlots }()
	return policy.Parse(src)
}

// CheckPolicy parses a policy sent to be published (or checked) for org
// and checks what publishing demands: it must validate, be in the
// organisation's currency and leave no active member without a role. Both
// doors (POST /api/v1/policies and its check, the manager's policy editor)
// call it. A refusal is a *margen.Error whose Err, when the document has
// positioned problems, is a policy.Errors.
func CheckPolicy(ctx context.Context, st MemberLister, org *margen.Org, src []byte) (*policy.Policy, error) {
	pol, err := ParsePolicy(ctx, src)
	if err != nil {
		var pe policy.Errors
		if !errors.As(err, &pe) {
			return nil, err
		}
		return nil, policyProblem(pe)
	}
	if pol.Currency() != org.Currency {
		return nil, margen.Invalid("currency", "error.policy_currency", "currency", pol.Currency(), "expected", org.Currency)
	}
	members, err := st.ListMembers(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	var names []string
	var list policy.Errors
	for _, m := range members {
		if !m.Active || pol.HasRole(m.Role) {
			continue
		}
		names = append(names, fmt.Sprintf("%s (%s)", m.Login, m.Role))
		list = append(list, policy.Error{Path: "roles", Msg: fmt.Sprintf("active member %q has role %q, which this policy does not define", m.Login, m.Role)})
	}
	if len(names) > 0 {
		e := margen.Invalid("roles", "error.policy_roles_missing", "members", strings.Join(names, ", "))
		e.Err = list
		return nil, e
	}
	return pol, nil
}

// policyLimitKeys names the message of each policy limit.
var policyLimitKeys = map[string]string{
	policy.LimitSize:           "error.policy_limit_size",
	policy.LimitNodes:          "error.policy_limit_nodes",
	policy.LimitDepth:          "error.policy_limit_depth",
	policy.LimitScalar:         "error.policy_limit_scalar",
	policy.LimitAlias:          "error.policy_limit_alias",
	policy.LimitEntries:        "error.policy_limit_entries",
	policy.LimitList:           "error.policy_limit_list",
	policy.LimitCondition:      "error.policy_limit_condition",
	policy.LimitConditionsSize: "error.policy_limit_conditions_size",
	policy.LimitConditionDepth: "error.policy_limit_condition_depth",
}

// policyProblem is the refusal of a policy that does not validate:
// ETOOLARGE when it is too large, EINVALID naming the limit when it breaks
// another one, else EINVALID with every problem listed.
func policyProblem(pe policy.Errors) *margen.Error {
	for _, e := range pe {
		if e.Limit == "" {
			continue
		}
		code := margen.EINVALID
		if e.Limit == policy.LimitSize {
			code = margen.ETOOLARGE
		}
		key, ok := policyLimitKeys[e.Limit]
		if !ok {
			continue
		}
		return &margen.Error{Code: code, Key: key, Args: map[string]any{"max": e.Max, "count": len(pe)}, Err: pe}
	}
	return &margen.Error{Code: margen.EINVALID, Key: "error.policy_invalid", Args: map[string]any{"count": len(pe)}, Err: pe}
}
