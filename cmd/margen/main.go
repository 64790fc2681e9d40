// Command margen is the one binary of margen: the HTTP server, the
// database migrations, the demo organisation and the administration
// commands (organisations, teams, members, tokens, policies, ledger).
//
// Everything is reached through run, which takes its arguments, standard
// streams and a context, so that tests drive the real binary in-process.
// main only wires the signals and turns an error into exit status 1.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	_ "time/tzdata" // time zones must load even where the system has no zoneinfo

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/store"
)

// version and commit are set at build time by scripts/release with
// -ldflags "-X main.version=v1.2.3 -X main.commit=…"; otherwise they are
// read from the build information the Go toolchain records.
var (
	version = ""
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var quiet exitError
		var pe *policyErrors
		switch {
		case errors.As(err, &quiet):
		case errors.As(err, &pe):
			fmt.Fprintln(os.Stderr, pe.Error()) // FILE:LINE:COL: path: message, like a compiler
		default:
			fmt.Fprintln(os.Stderr, "margen: "+describe(err))
		}
		os.Exit(1)
	}
}

// exitError ends the program with status 1 without printing anything more:
// the command has already said what went wrong.
type exitError struct{ msg string }

func (e exitError) Error() string { return e.msg }

// describe turns an error into one line a person can act on. Domain errors
// carry a catalogue key: they are written with their English message.
func describe(err error) string {
	var me *margen.Error
	if errors.As(err, &me) && me.Code != margen.EINTERNAL {
		if cat, cerr := i18n.New(); cerr == nil && cat.Has("en", me.Key) {
			msg := cat.T("en", me.Key, me.Args)
			if me.Field != "" {
				msg += " (" + me.Field + ")"
			}
			return strings.Replace(err.Error(), me.Error(), msg, 1)
		}
	}
	return err.Error()
}

// command is one sub-command of margen.
type command struct {
	name    string // "policy check"
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

// app is what every command gets: its streams and the configuration read
// from the environment (flags are parsed by each command on top of it).
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// collect, when set, receives every flag set a command defines (for
	// margen config docs).
	collect func(*flagSet)
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP server (API and health checks)", cmdServe},
		{"migrate", "create or upgrade the database schema", cmdMigrate},
		{"demo", "load the demo organisation Grupo La Brasa and print how to sign in", cmdDemo},
		{"org create", "create an organisation and its owner", cmdOrgCreate},
		{"team add", "add a team or site to an organisation", cmdTeamAdd},
		{"member add", "add a member to an organisation", cmdMemberAdd},
		{"member deactivate", "deactivate a member (their tokens stop working)", cmdMemberActive(false)},
		{"member activate", "reactivate a member", cmdMemberActive(true)},
		{"token create", "create an API token for a member", cmdTokenCreate},
		{"token list", "list a member's API tokens", cmdTokenList},
		{"token revoke", "revoke an API token", cmdTokenRevoke},
		{"policy check", "validate a latitude policy file", cmdPolicyCheck},
		{"policy publish", "validate and publish a latitude policy", cmdPolicyPublish},
		{"policy explain", "show what the active policy would answer, recording nothing", cmdPolicyExplain},
		{"import members", "import members from a CSV file", cmdImport(margen.ImportMembers)},
		{"import teams", "import teams from a CSV file", cmdImport(margen.ImportTeams)},
		{"import customers", "import customers from a CSV file", cmdImport(margen.ImportCustomers)},
		{"export decisions", "export decisions of a period as CSV or JSON Lines", cmdExport("decisions")},
		{"export acts", "export acts of a period", cmdExport("acts")},
		{"export reactions", "export customer reactions of a period", cmdExport("reactions")},
		{"export refusals", "export refusals of a period", cmdExport("refusals")},
		{"export approvals", "export approval requests of a period", cmdExport("approvals")},
		{"export audit", "export the audit trail of a period", cmdExport("audit")},
		{"customer export", "export everything margen holds about one customer as JSON", cmdCustomerExport},
		{"customer erase", "erase one customer's personal data, keeping scores and amounts", cmdCustomerErase},
		{"ledger check", "re-derive the budget ledger and verify the audit trail and every row it seals", cmdLedgerCheck},
		{"audit checkpoint", "append a signed checkpoint of the audit chain head to a file", cmdAuditCheckpoint},
		{"audit verify", "prove the current audit history extends signed checkpoints", cmdAuditVerify},
		{"backup", "take a verified online backup of a SQLite database", cmdBackup},
		{"restore", "replace a SQLite database with a verified backup", cmdRestore},
		{"version", "print the version of margen", cmdVersion},
		{"config docs", "print the configuration reference (every flag and variable) as Markdown", cmdConfigDocs},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `margen gives frontline staff the latitude to satisfy a customer on the spot,
and keeps every such decision under control.

Usage:
  margen COMMAND [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "margen COMMAND -h" for the flags of a command and an example.

Environment (flags win over it):
  MARGEN_DB          database: a SQLite file path (default ./margen.db) or a postgres:// URL
  MARGEN_ADDR        address serve listens on (default 127.0.0.1:8080)
  MARGEN_LOG_FORMAT  text (default) or json; logs go to standard error
  MARGEN_LOG_LEVEL   debug, info (default), warn or error
  MARGEN_SLA_EVERY   how often serve looks for approval requests past their SLA (default 1s)
  MARGEN_METRICS_PUBLIC  true: serve /metrics to any client, not only this machine
  MARGEN_WRITE_TIMEOUT   how long a decision may wait for the database before a 503 busy (default 5s)
  MARGEN_DEBUG_ADDR      private address for /debug/pprof and /metrics, e.g. 127.0.0.1:6060 (default off)
  MARGEN_BACKUP_DIR  where serve takes scheduled SQLite backups (and the copy before an upgrade)
  MARGEN_BACKUP_EVERY, MARGEN_BACKUP_KEEP  interval (default 6h) and how many to keep (default 14)
Every variable and flag: "margen config docs" or docs/operations.md.

Amounts are integer minor units of the organisation's currency
(COP in centavos: 800000 = $8.000).
`)
}

// usageError is a mistake in the command line: main prints it, followed by
// the relevant usage on standard error.
type usageError struct {
	msg   string
	usage func(io.Writer)
}

func (e *usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	err := a.dispatch(ctx, args)
	if errors.Is(err, errHelp) {
		return nil
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "margen: %s\n\n", ue.msg)
		ue.usage(stderr)
		return exitError{ue.msg}
	}
	return err
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return &usageError{"no command given", usage}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(a.stdout)
		return nil
	case "--version", "-version":
		return cmdVersion(ctx, a, nil)
	}
	// Commands are one word ("serve") or two ("policy check").
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slicesEqual(args[:len(words)], words) {
			return c.run(ctx, a, args[len(words):])
		}
	}
	// A known group with an unknown or missing sub-command.
	var subs []string
	for _, c := range commands() {
		if group, sub, ok := strings.Cut(c.name, " "); ok && group == args[0] {
			subs = append(subs, sub)
		}
	}
	if len(subs) > 0 {
		msg := fmt.Sprintf("%q needs a sub-command: %s", args[0], strings.Join(subs, ", "))
		if len(args) > 1 {
			msg = fmt.Sprintf("unknown command %q (%s has: %s)", args[0]+" "+args[1], args[0], strings.Join(subs, ", "))
		}
		return &usageError{msg, usage}
	}
	return &usageError{fmt.Sprintf("unknown command %q", args[0]), usage}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// build describes the binary: its version, VCS commit and time, and
// whether the tree had uncommitted changes.
type build struct {
	Version  string
	Commit   string
	Time     string
	Modified bool
	Go       string
}

// readBuild prefers the -ldflags values and falls back to
// runtime/debug.ReadBuildInfo (module version, vcs.revision, vcs.time,
// vcs.modified).
func readBuild() build {
	b := build{Version: version, Commit: commit}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		b.Go = bi.GoVersion
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true" && commit == ""
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// versionString is the build's version with a short commit, for logs and
// the API: "v1.2.3", "dev+0123456789ab", "v1.2.3+0123456789ab-dirty".
func versionString() string {
	b := readBuild()
	v := b.Version
	if b.Commit != "" && (version == "" || !strings.Contains(version, b.Commit[:min(7, len(b.Commit))])) {
		v += "+" + b.Commit[:min(12, len(b.Commit))]
	}
	if b.Modified {
		v += "-dirty"
	}
	return v
}

func cmdVersion(_ context.Context, a *app, args []string) error {
	fs := a.flags("version", "", `Prints the version of margen, the commit it was built from, and the Go
version that built it.

Example:
  margen version`)
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	b := readBuild()
	fmt.Fprintf(a.stdout, "margen %s\n", b.Version)
	c := b.Commit
	if c == "" {
		c = "unknown"
	}
	if b.Modified {
		c += " (with uncommitted changes)"
	}
	fmt.Fprintf(a.stdout, "commit %s\n", c)
	if b.Time != "" {
		fmt.Fprintf(a.stdout, "built from a commit of %s\n", b.Time)
	}
	if b.Go != "" {
		fmt.Fprintf(a.stdout, "go %s\n", strings.TrimPrefix(b.Go, "go"))
	}
	fmt.Fprintf(a.stdout, "schema version %d\n", store.SchemaVersion())
	return nil
}
