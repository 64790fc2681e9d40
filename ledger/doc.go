// Package ledger holds the rules of the budget ledger as pure code: how a
// decision moves its accounts (an allowed decision posts, a request holds
// as pending, an answered request has its hold posted or voided) and the
// derivation that `margen ledger check` verifies (every account equals the
// sums of its entries, and every decision's entries equal what the decision
// and its approval imply).
//
// It must never do I/O: no SQL, no clock, no logging. The store reads rows
// and feeds them to a Check in the order the Check documents (so that a
// check of any size runs in constant memory), and applies the entries and
// balance deltas that Release computes.
package ledger
