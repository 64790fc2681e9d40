// Package importer loads members, teams and customers from CSV files, for
// the CLI (margen import) and the API (POST /api/v1/imports/{kind}) alike.
//
// It works in two steps. Parse and Check are pure: they detect the
// encoding (UTF-8 with or without a byte order mark, or Windows-1252, the
// CSV Excel writes in Spanish) and the separator (";" or ","), map the
// header, and validate every line, collecting every problem with its line
// number and field. Then Run asks the store for the existing records with
// the file's keys under the organisation's lock, and Plan (pure again)
// decides what is new, updated or unchanged and what to write: nothing at
// all when a line is bad (unless SkipBad) or on a dry run.
//
// Records are keyed by their external reference (customers by ref,
// members by login, teams by slug), so importing the same file twice
// changes nothing the second time and writes no audit entry.
//
// It must never write anything before every line is validated, and never
// grant an access level above the importer's own.
package importer
