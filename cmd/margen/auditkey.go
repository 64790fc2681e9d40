package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// auditKeyFile is where the audit key lives: --audit-key-file, else beside
// a SQLite database (margen.db -> margen.db.audit-key), else (PostgreSQL)
// in the user's configuration directory.
func auditKeyFile(cfg config) (string, error) {
	if cfg.AuditKeyFile != "" {
		return cfg.AuditKeyFile, nil
	}
	if !store.IsPostgres(cfg.DB) {
		return cfg.DB + ".audit-key", nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("audit key: no --audit-key-file and no user config directory: %w", err)
	}
	return filepath.Join(dir, "margen", "audit-key"), nil
}

// loadAuditKey reads the audit key from MARGEN_AUDIT_KEY or its file. When
// the file does not exist and create is set (serve, migrate, demo), a new
// key is generated and written there (mode 0600), with a warning on the log
// and on stderr: the operator must back it up, and give the same key to
// every instance on the same database.
func loadAuditKey(cfg config, log *slog.Logger, create bool) (margen.AuditKey, error) {
	if cfg.AuditKey != "" {
		k, err := margen.ParseAuditKey(cfg.AuditKey)
		if err != nil {
			return nil, fmt.Errorf("MARGEN_AUDIT_KEY: %w", err)
		}
		return k, nil
	}
	path, err := auditKeyFile(cfg)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := margen.ParseAuditKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("audit key file %s: %w", path, err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("audit key file: %w", err)
	case !create:
		return nil, fmt.Errorf("audit key file %s does not exist: give the key this database is sealed with (--audit-key-file, MARGEN_AUDIT_KEY_FILE or MARGEN_AUDIT_KEY)", path)
	}
	k := make(margen.AuditKey, margen.AuditKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	log.Warn("generated a new audit key: back it up; every instance on this database needs the same key",
		"file", path, "key_id", k.ID())
	if cfg.warn != nil {
		fmt.Fprintf(cfg.warn, `margen: WARNING: generated a new audit key in %s (key id %s).
  Back this file up now, apart from the database backups: without it the audit
  trail cannot be verified, and anyone holding it can rewrite history unnoticed.
  Every margen instance on this database needs the same key
  (--audit-key-file, MARGEN_AUDIT_KEY_FILE or MARGEN_AUDIT_KEY).
`, path, k.ID())
	}
	return k, nil
}

// printAudit writes the audit part of a check and reports whether it is ok.
func printAudit(w io.Writer, rep margen.AuditReport) bool {
	fmt.Fprintf(w, "audit:  %d entries, %d sealed rows: ", rep.Entries, rep.Rows)
	if rep.OK() {
		fmt.Fprintf(w, "chain intact, every sealed row matches (sealed from entry %d, key %s)\n", rep.SealedFrom, rep.KeyID)
		return true
	}
	fmt.Fprintf(w, "%d problems\n", rep.ProblemCount)
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  %s: %s\n", p.What, p.Detail)
	}
	if n := rep.ProblemCount - len(rep.Problems); n > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", n)
	}
	return false
}

func cmdAuditCheckpoint(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("audit checkpoint", "", `Verifies the organisation's audit trail, then appends a signed checkpoint of
its head (organisation, seq, hash, time) to a file, one JSON line per
checkpoint. Keep the file apart from the database (another machine, a
ticket, a notary): margen audit verify later proves that the history extends
every checkpoint in it. The signature is Ed25519, with a key derived from
the audit key; the checkpoint carries its public key, which is also printed
so a verifier can be given it alone.

Example:
  margen audit checkpoint --org demo --out /backup/demo.checkpoints`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	out := fs.String("out", "", "file to append the checkpoint to (required)")
	fs.require("org", "out")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	key, err := loadAuditKey(cfg, cfg.logger(a.stderr), false)
	if err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.CheckAudit(ctx, org.ID)
	if err != nil {
		return err
	}
	if !printAudit(a.stdout, rep) {
		return fmt.Errorf("%s: the audit trail does not verify: no checkpoint written", org.Slug)
	}
	head, err := st.ListAudit(ctx, org.ID, rep.Entries-1, 1)
	if err != nil {
		return err
	}
	if len(head) != 1 || head[0].Seq != rep.Entries {
		return fmt.Errorf("%s: the audit trail moved while checkpointing: try again", org.Slug)
	}
	cp := margen.Checkpoint{Org: org.Slug, OrgID: org.ID, Seq: head[0].Seq, Hash: head[0].Hash,
		At: time.Now().UTC().Truncate(time.Microsecond)}
	key.SignCheckpoint(&cp)
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.Write(margen.MarshalCheckpoint(&cp)); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(a.stdout, "checkpoint: %s at entry %d, hash %s, appended to %s\npublic key: %s\n",
		org.Slug, cp.Seq, cp.Hash, *out, cp.PublicKey)
	return nil
}

func cmdAuditVerify(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("audit verify", "", `Proves that the organisation's current audit history extends every
checkpoint in a file written by margen audit checkpoint: each checkpoint's
signature verifies, the entry at its seq still has its hash, and the whole
trail and every row it seals verify from the first entry to the head. The
exit status is 1 if anything does not.

The signatures are checked with --public-key when given (base64, as
margen audit checkpoint prints it), else with the key derived from the
audit key.

Example:
  margen audit verify --org demo --checkpoint /backup/demo.checkpoints`)
	fs.dbFlag(&cfg)
	orgSlug := fs.String("org", "", "slug of the organisation (required)")
	file := fs.String("checkpoint", "", "checkpoint file (required)")
	pubFlag := fs.String("public-key", "", "Ed25519 public key of the checkpoints, base64 (default: derived from the audit key)")
	fs.require("org", "checkpoint")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	key, err := loadAuditKey(cfg, cfg.logger(a.stderr), false)
	if err != nil {
		return err
	}
	pub := key.PublicKey()
	if *pubFlag != "" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(*pubFlag))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return errors.New("--public-key: not a base64 Ed25519 public key")
		}
		pub = ed25519.PublicKey(b)
	}
	cps, err := readCheckpoints(*file)
	if err != nil {
		return err
	}
	st, org, err := openOrg(ctx, a, cfg, *orgSlug)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.CheckAudit(ctx, org.ID)
	if err != nil {
		return err
	}
	w := a.stdout
	ok := printAudit(w, rep)
	bad, first := 0, ""
	for i := range cps {
		cp := &cps[i]
		fail := func(format string, args ...any) {
			bad++
			msg := fmt.Sprintf("checkpoint %d (entry %d): "+format, append([]any{i + 1, cp.Seq}, args...)...)
			if first == "" {
				first = msg
			}
			fmt.Fprintln(w, msg)
		}
		if err := margen.VerifyCheckpoint(cp, pub); err != nil {
			fail("%v", err)
			continue
		}
		if cp.OrgID != org.ID {
			fail("is for organisation %s (%s), not %s", cp.Org, cp.OrgID, org.Slug)
			continue
		}
		es, err := st.ListAudit(ctx, org.ID, cp.Seq-1, 1)
		if err != nil {
			return err
		}
		switch {
		case len(es) != 1 || es[0].Seq != cp.Seq:
			fail("the entry is gone: the history was cut")
		case es[0].Hash != cp.Hash:
			fail("the entry's hash is %s, the checkpoint says %s: the history was rewritten", es[0].Hash, cp.Hash)
		default:
			fmt.Fprintf(w, "checkpoint %d (entry %d, %s): extended by the current history\n", i+1, cp.Seq,
				cp.At.Format(time.RFC3339))
		}
	}
	switch {
	case bad > 0 && !ok:
		return fmt.Errorf("%s: %d of %d checkpoints do not hold (%s) and the audit trail does not verify", org.Slug, bad, len(cps), first)
	case bad > 0:
		return fmt.Errorf("%s: %d of %d checkpoints do not hold (%s)", org.Slug, bad, len(cps), first)
	case !ok:
		return fmt.Errorf("%s: the audit trail does not verify", org.Slug)
	}
	fmt.Fprintf(w, "%s: the history extends all %d checkpoints\n", org.Slug, len(cps))
	return nil
}

// readCheckpoints reads a checkpoint file (JSON lines; blank lines skipped).
func readCheckpoints(path string) ([]margen.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	defer f.Close()
	var out []margen.Checkpoint
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var cp margen.Checkpoint
		if err := json.Unmarshal([]byte(line), &cp); err != nil {
			return nil, fmt.Errorf("--checkpoint: line %d: %w", n, err)
		}
		out = append(out, cp)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--checkpoint: %s holds no checkpoint", path)
	}
	return out, nil
}
