// Package decision answers "¿puedo?": it turns a member's request into a
// verdict of the active latitude policy and records it, durably and
// atomically, with everything the verdict implies (the act, the approval
// request or the refusal, the ledger entries, the audit entry and the
// idempotency record).
//
// Decisions are group-committed: one writer goroutine per process collects
// the decisions waiting at that moment (up to MaxBatch, waiting at most
// MaxWait for more, and while the previous batch waits for its sync, until
// that sync ends), evaluates them in arrival order against the running
// balances of the budget accounts it locked, writes them in one transaction
// and answers every caller once the store says the batch is durable. One
// fsync thus serves a whole batch, and the store's row locks keep several
// processes correct.
//
// The package holds no SQL and no HTTP: it meets the database through
// the small Store interface it declares (margen.Store has it) and the
// policy through the pure policy package.
package decision
