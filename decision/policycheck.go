package decision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// MemberLister is what CheckPolicy reads of the store.
type MemberLister interface {
	ListMembers(ctx context.Context, orgID string) ([]margen.Member, error)
}

// CheckPolicy parses a policy sent to be published (or checked) for org
// and checks what publishing demands: it must validate, be in the
// organisation's currency and leave no active member without a role. Both
// doors (POST /api/v1/policies and its check, the manager's policy editor)
// call it. A refusal is a *margen.Error (EINVALID) whose Err, when the
// document has positioned problems, is a policy.Errors.
func CheckPolicy(ctx context.Context, st MemberLister, org *margen.Org, src []byte) (*policy.Policy, error) {
	pol, err := policy.Parse(src)
	if err != nil {
		var pe policy.Errors
		if !errors.As(err, &pe) {
			return nil, err
		}
		return nil, &margen.Error{Code: margen.EINVALID, Key: "error.policy_invalid", Args: map[string]any{"count": len(pe)}, Err: pe}
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
