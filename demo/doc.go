// Package demo loads a realistic demonstration organisation into a store:
// Grupo La Brasa, a BBQ ribs restaurant and its 20-seat contact centre in
// Bogotá, with its people, its customers, a latitude policy that reads like a
// real business's (policy.yaml) and about ninety days of history.
//
// The history is made the way a real one is: every decision goes through the
// real decision engine, with an injected clock stepped through each day's
// opening hours, so budgets, the ledger and the audit chain are exactly what
// production would have written, and `margen ledger check` passes on them.
// Randomness comes from math/rand/v2 seeded by Options.Seed, so a load is
// reproducible (up to the random ids).
//
// The customer's voice is there too: survey links made after some acts and
// answered hours later, and answers through three standing QR codes, with
// satisfaction rising over the period as it did in the pilot stores. Their
// tokens are made under Options.SurveyKey, so the printed codes scan.
//
// The stories are those of the field: the second bread basket for a table of
// six, the stranded customer and the staff ATM, the suggestion nobody could
// forward, the waiter who simply did the right thing.
//
// This package must never be imported by the server: it is for the CLI
// (`margen demo`) and tests.
package demo
