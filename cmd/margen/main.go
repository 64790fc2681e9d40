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
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it is read from the module build information.
var version = ""

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
		{"ledger check", "re-derive the budget ledger and verify the audit trail and every row it seals", cmdLedgerCheck},
		{"audit checkpoint", "append a signed checkpoint of the audit chain head to a file", cmdAuditCheckpoint},
		{"audit verify", "prove the current audit history extends signed checkpoints", cmdAuditVerify},
		{"version", "print the version of margen", cmdVersion},
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

// versionString is the build's version: the -ldflags value, or the module
// version and VCS revision recorded by the Go toolchain.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

func cmdVersion(_ context.Context, a *app, args []string) error {
	fs := a.flags("version", "", `Prints the version of margen and of Go it was built with.

Example:
  margen version`)
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	gov := ""
	if bi != nil {
		gov = " (" + bi.GoVersion + ")"
	}
	fmt.Fprintf(a.stdout, "margen %s%s\n", versionString(), gov)
	return nil
}
