// Package export writes an organisation's records (decisions, acts,
// reactions, refusals, approval requests and the audit trail) of a period
// as CSV or JSON Lines, for the CLI (margen export) and the API
// (GET /api/v1/exports/{kind}) alike.
//
// Rows are streamed from the store to the writer one at a time: memory
// stays flat whatever the number of rows.
//
// CSV is meant to be opened in a spreadsheet, so a text cell that begins
// with =, +, -, @, a tab or a carriage return is written with a leading
// apostrophe (') and cannot run as a formula. Integer columns (amounts,
// versions, levels, sequence numbers) are written as plain decimal numbers
// made by the program, never from user text, so a negative amount stays a
// number; booleans are true or false; times are RFC 3339 in the
// organisation's time zone. JSON Lines carries the same columns with their
// JSON types and is not escaped.
//
// It must never collect the rows of an export in memory.
package export
