package ledger

import (
	"github.com/margenhq/margen"
)

// Movement is one ledger entry to write: Amount (signed) into the Kind
// column (margen.EntryPosted or margen.EntryPending) of the account Key.
type Movement struct {
	Key    margen.BudgetKey
	Kind   string
	Amount int64
}

// Hold is what a decision still holds as pending on one account: the sum of
// its pending entries there.
type Hold = margen.Hold

// Delta is a change of one account's balance.
type Delta struct {
	Key margen.BudgetKey
	margen.Balance
}

// Charge is what a decision writes on the accounts it charges: an allowed
// decision posts its amount on each, a decision waiting for approval holds
// it as pending on each. Any other outcome, and a zero amount, moves
// nothing. The deltas are the balance changes the movements make, one per
// key, in the keys' order (so a caller can pair each with what it knows of
// the account).
func Charge(outcome string, amount int64, keys []margen.BudgetKey) ([]Movement, []Delta) {
	var kind string
	switch outcome {
	case margen.OutcomeAllowed:
		kind = margen.EntryPosted
	case margen.OutcomeNeedsApproval:
		kind = margen.EntryPending
	default:
		return nil, nil
	}
	if amount == 0 || len(keys) == 0 {
		return nil, nil
	}
	ms := make([]Movement, 0, len(keys))
	ds := make([]Delta, 0, len(keys))
	for _, k := range keys {
		ms = append(ms, Movement{Key: k, Kind: kind, Amount: amount})
		d := Delta{Key: k}
		if kind == margen.EntryPosted {
			d.Posted = amount
		} else {
			d.Pending = amount
		}
		ds = append(ds, d)
	}
	return ms, ds
}

// Release ends the holds of an answered request: each amount still held is
// reversed (a pending entry of the opposite sign) and, when post is set
// (the request was approved), posted on the same account; otherwise
// (rejected, expired) the hold is voided and nothing is posted. Holds of
// zero are skipped. The deltas move the balances accordingly.
func Release(holds []Hold, post bool) ([]Movement, []Delta) {
	var ms []Movement
	var ds []Delta
	for _, h := range holds {
		if h.Amount == 0 {
			continue
		}
		ms = append(ms, Movement{Key: h.Key, Kind: margen.EntryPending, Amount: -h.Amount})
		d := Delta{Key: h.Key, Balance: margen.Balance{Pending: -h.Amount}}
		if post {
			ms = append(ms, Movement{Key: h.Key, Kind: margen.EntryPosted, Amount: h.Amount})
			d.Posted = h.Amount
		}
		ds = append(ds, d)
	}
	return ms, ds
}

// Expected is what a decision's entries must sum to on each account it
// lists, given its outcome and, for a request, the status of its approval:
// allowed and approved decisions have their amount posted (an approved
// request's hold was reversed to zero), a pending request has it held, a
// rejected or expired request has nothing left (its hold was voided), and
// a denied decision never moved anything.
func Expected(outcome, approvalStatus string, amount int64) margen.Balance {
	switch {
	case outcome == margen.OutcomeAllowed:
		return margen.Balance{Posted: amount}
	case outcome != margen.OutcomeNeedsApproval:
		return margen.Balance{}
	case approvalStatus == margen.ApprovalApproved:
		return margen.Balance{Posted: amount}
	case approvalStatus == margen.ApprovalPending:
		return margen.Balance{Pending: amount}
	default: // rejected or expired: the hold was voided
		return margen.Balance{}
	}
}
