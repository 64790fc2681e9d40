// Package i18n is margen's message catalogue in Spanish and English: the
// texts of every error key (error.*) and of every decision explanation code
// (explain.*), loaded with go-i18n from files embedded in the binary, plus
// the language matching and money formatting the messages need.
//
// The catalogue is loaded and checked once at start-up: a missing or broken
// file, or a key present in one language but not the other, fails New, never
// a request. The package does no I/O after New and keeps no global state.
package i18n
