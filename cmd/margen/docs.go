package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// envOnly documents environment variables that no flag sets. Every
// MARGEN_* variable the commands read must be either here or named by a
// flag's "(env MARGEN_…)" (TestConfigDocCurrent checks it).
var envOnly = map[string]string{
	"MARGEN_AUDIT_KEY":     "the audit key itself, hex or base64 (at least 16 bytes); wins over MARGEN_AUDIT_KEY_FILE",
	"MARGEN_SMTP_PASSWORD": "the SMTP password itself (serve; never logged); --smtp-password-file wins over it. No flag: a flag shows in the process list",
}

var envInUsage = regexp.MustCompile(`\s*\(?(?:;\s*)?env (MARGEN_[A-Z0-9_]+)\)?`)

func cmdConfigDocs(_ context.Context, a *app, args []string) error {
	fs := a.flags("config docs", "", `Prints the configuration reference of docs/operations.md (Markdown): every
environment variable and every flag of every command, generated from the
flag definitions themselves, so the page cannot drift from the binary.

Example:
  margen config docs`)
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	return writeConfigDocs(a.stdout)
}

// docFlag is one flag of one command, as documented.
type docFlag struct {
	name, typ, def, usage, env string
}

// collectFlags runs every command with -h, in an app that reads an empty
// environment (so the defaults documented are margen's, not this
// machine's), and returns each command's flags.
func collectFlags() (names []string, flags map[string][]docFlag) {
	flags = map[string][]docFlag{}
	for _, c := range commands() {
		var sets []*flagSet
		a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
			getenv: func(string) string { return "" }, collect: func(fs *flagSet) { sets = append(sets, fs) }}
		_ = c.run(context.Background(), a, []string{"-h"})
		names = append(names, c.name)
		for _, fs := range sets {
			fs.VisitAll(func(f *flag.Flag) {
				typ, usage := flag.UnquoteUsage(f)
				d := docFlag{name: f.Name, typ: typ, def: f.DefValue}
				if m := envInUsage.FindStringSubmatch(usage); m != nil {
					d.env = m[1]
					usage = strings.TrimSpace(strings.Replace(usage, m[0], "", 1))
				}
				d.usage = usage
				if d.def == "0" || d.def == "false" || d.def == "0s" {
					d.def = ""
				}
				flags[c.name] = append(flags[c.name], d)
			})
		}
	}
	return names, flags
}

// writeConfigDocs writes the generated reference.
func writeConfigDocs(w io.Writer) error {
	names, flags := collectFlags()
	type envDoc struct {
		flag, def, usage string
		cmds             []string
	}
	envs := map[string]*envDoc{}
	for _, name := range names {
		for _, f := range flags[name] {
			if f.env == "" {
				continue
			}
			e := envs[f.env]
			if e == nil {
				e = &envDoc{flag: "--" + f.name, def: f.def, usage: f.usage}
				envs[f.env] = e
			}
			e.cmds = append(e.cmds, name)
		}
	}
	for k, v := range envOnly {
		envs[k] = &envDoc{usage: v}
	}
	keys := make([]string, 0, len(envs))
	for k := range envs {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	fmt.Fprintf(w, "### Environment variables\n\n")
	fmt.Fprintf(w, "Each variable sets the default of the flag beside it; a flag given on the command line wins.\n\n")
	fmt.Fprintf(w, "| variable | flag | default | used by | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, k := range keys {
		e := envs[k]
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s |\n", k, code(e.flag), code(e.def), strings.Join(e.cmds, ", "), cell(e.usage))
	}
	fmt.Fprintf(w, "\n### Flags of each command\n")
	for _, name := range names {
		fmt.Fprintf(w, "\n#### `margen %s`\n\n", name)
		if len(flags[name]) == 0 {
			fmt.Fprintf(w, "No flags.\n")
			continue
		}
		fmt.Fprintf(w, "| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n")
		for _, f := range flags[name] {
			fl := "--" + f.name
			if f.typ != "" {
				fl += " " + strings.ToUpper(f.typ)
			}
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", fl, code(f.env), code(f.def), cell(f.usage))
		}
	}
	return nil
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
