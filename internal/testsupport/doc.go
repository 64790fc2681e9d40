// Package testsupport is what the tests of several packages share: an
// injected clock, an organisation set up in a store, and the API server
// harness. Databases themselves come from store/storetest (one per test, on
// SQLite and PostgreSQL).
//
// It is imported by tests only; it must never be imported by the binary.
package testsupport
