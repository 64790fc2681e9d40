package margen_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

var update = flag.Bool("update", false, "rewrite the generated vocabulary in docs/api.md")

// examples are audit entries as margen writes them, one or more per
// action that announces events: the documentation's examples come from
// them through EventsOf, so they show what is really sent.
var examples = func() []*margen.AuditEntry {
	at := time.Date(2026, 11, 25, 19, 18, 25, 273694000, time.UTC)
	mk := func(seq int64, d time.Duration, actor string, a margen.AuditAction, subject string, v any) *margen.AuditEntry {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return &margen.AuditEntry{OrgID: "org_01a21424dc89", Seq: seq, At: at.Add(d), Actor: actor, Action: a,
			Subject: subject, Data: b}
	}
	const (
		marta = "mem_01a21424dc8977bea0ef9c1bdf24b790"
		lucia = "mem_01a214159a6178bd8b641ea05615ef35"
		owner = "mem_01a214159a5f3c1e9b07e2b4c55d1a20"
		dec   = "dec_01a2142518fb7b13b060d4d30e4c6a27"
		apr   = "apr_01a2142518fb7b2390310b953b18cc55"
		cus   = "cus_e53893547159377cbfa91cb3bea0c079"
	)
	request := margen.EventData{Outcome: margen.OutcomeNeedsApproval, Action: "cortesia", Amount: 4000000, Customer: cus,
		Rule: "cortesia_mesa", Version: 1, Member: marta, Team: "restaurante", DecisionID: dec, ApprovalID: apr,
		ApproverRole: "supervisor", DueAt: "2026-11-25T19:28:25Z"}
	answer := func(status string, by string, ms int64) margen.EventData {
		d := margen.EventData{Action: "cortesia", Amount: 4000000, Customer: cus, Member: marta, Team: "restaurante",
			DecisionID: dec, ApprovalID: apr, Status: status, ApproverRole: "supervisor", DecidedBy: by, TimeToAnswer: ms}
		if status == margen.ApprovalApproved {
			d.ActID = "act_01a2142c9e1b0f6a4d2e8c7b5a391f08"
		}
		return d
	}
	return []*margen.AuditEntry{
		mk(4685, 0, marta, margen.ActionDecisionCreate, dec, request),
		mk(4686, time.Second, marta, margen.ActionDecisionCreate, "dec_01a2142519a04c3e8d1f6b2a7c90e5d4",
			margen.EventData{Outcome: margen.OutcomeDenied, Action: "licor_cortesia", Amount: 1200, Customer: cus,
				Rule: "sin_licor_de_cortesia", Version: 1, Member: marta, Team: "restaurante",
				DecisionID: "dec_01a2142519a04c3e8d1f6b2a7c90e5d4", RefusalID: "ref_01a2142519a04c3e8d1f6b2a7c90e5d5"}),
		mk(4690, time.Minute, marta, margen.ActionExceptionRequest, "apr_01a21426a0c13b5e9f2d7c4a8b6e1d30",
			margen.EventData{Outcome: margen.OutcomeNeedsApproval, Action: "exception", Version: 1, Member: marta,
				Team: "restaurante", DecisionID: "dec_01a21426a0c13b5e9f2d7c4a8b6e1d2f",
				ApprovalID: "apr_01a21426a0c13b5e9f2d7c4a8b6e1d30", ApproverRole: "owner", DueAt: "2026-11-25T20:19:25Z"}),
		mk(4698, 12*time.Minute+34*time.Second, lucia, margen.ActionApprovalApproved, apr,
			answer(margen.ApprovalApproved, lucia, 754000)),
		mk(4699, 13*time.Minute, lucia, margen.ActionApprovalRejected, apr, answer(margen.ApprovalRejected, lucia, 780000)),
		mk(4700, 15*time.Minute, "system", margen.ActionApprovalExpired, apr, answer(margen.ApprovalExpired, "system", 900000)),
		mk(4701, 10*time.Minute, "system", margen.ActionApprovalEscalated, apr,
			margen.EventData{Action: "cortesia", Amount: 4000000, Customer: cus, Member: marta, Team: "restaurante",
				DecisionID: dec, ApprovalID: apr, Status: margen.Escalated, ApproverRole: "gerente",
				FromRole: "supervisor", DueAt: "2026-11-25T19:58:25Z"}),
		mk(4710, 20*time.Minute, marta, margen.ActionRefusalRecord, "ref_01a21427b2d45e6f708192a3b4c5d6e7",
			margen.RefusalAudit{Action: "cambio_de_mesa", CustomerLeft: margen.LeftUnhappy, Reason: margen.RefusalNoRule}),
		mk(4721, 25*time.Minute, lucia, margen.ActionReactionRecord, "rea_01a2141616bc7c199b3380ac1a6aef6c",
			margen.ReactionAudit{ActID: "act_01a21415c9e37e6dbf4cf98eb0b80770", Sentiment: margen.SentimentPositive,
				Source: margen.SourceEmployee}),
		mk(4725, 27*time.Minute, "customer", margen.ActionSurveyAnswer, "sva_01a21428c3e5f7091b2d4f6a8c0e2b4d",
			margen.SurveyAudit{ActID: "act_01a21415c9e37e6dbf4cf98eb0b80770", LinkID: "svl_01a21415ca0b2c4d6e8f0a1b3c5d7e9f",
				Low: true, Member: marta, Scale: margen.ScaleCSAT, Score: 2, Team: "restaurante"}),
		mk(4726, 27*time.Minute, "system", margen.ActionCaseOpen, "cas_01a21428c3e6a0b1c2d3e4f5a6b7c8d9",
			margen.FollowUpChanged{CaseID: "cas_01a21428c3e6a0b1c2d3e4f5a6b7c8d9", AnswerID: "sva_01a21428c3e5f7091b2d4f6a8c0e2b4d",
				ActID: "act_01a21415c9e37e6dbf4cf98eb0b80770", Member: marta, Team: "restaurante", Status: margen.CaseOpen,
				Scale: margen.ScaleCSAT, Score: 2, DueAt: "2026-03-15T21:27:00Z"}),
		mk(4727, 28*time.Minute, "system", margen.ActionCaseEscalate, "cas_01a21428c3e6a0b1c2d3e4f5a6b7c8d9",
			margen.FollowUpChanged{CaseID: "cas_01a21428c3e6a0b1c2d3e4f5a6b7c8d9", AnswerID: "sva_01a21428c3e5f7091b2d4f6a8c0e2b4d",
				ActID: "act_01a21415c9e37e6dbf4cf98eb0b80770", Member: marta, Team: "restaurante", ApproverRole: "owner",
				Status: margen.CaseOpen, Scale: margen.ScaleCSAT, Score: 2, DueAt: "2026-03-15T21:27:00Z"}),
		mk(4728, 29*time.Minute, owner, margen.ActionCaseClose, "cas_01a21428c3e6a0b1c2d3e4f5a6b7c8d9",
			margen.FollowUpChanged{CaseID: "cas_01a21428c3e6a0b1c2d3e4f5a6b7c8d9", AnswerID: "sva_01a21428c3e5f7091b2d4f6a8c0e2b4d",
				ActID: "act_01a21415c9e37e6dbf4cf98eb0b80770", Member: marta, Team: "restaurante", ApproverRole: "owner",
				Status: margen.CaseClosed, Scale: margen.ScaleCSAT, Score: 2, DueAt: "2026-03-15T21:27:00Z",
				Outcome: margen.CaseResolved, Reaction: "positive"}),
		mk(4729, 29*time.Minute+30*time.Second, owner, margen.ActionCustomerErase, "cus_5956f5de01d623e534a56c708bcd29d0",
			margen.ErasureAudit{Rows: map[string]int{"customers": 1, "decisions": 3, "acts": 2, "survey_answers": 1}}),
		mk(4730, 30*time.Minute, owner, margen.ActionPolicyPublish, "policy",
			margen.PolicyAudit{Note: "La canasta de pan ya no necesita permiso",
				SourceSHA256: "9f2c4e7a1b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8", Version: 2}),
	}
}()

// exampleOf finds the first example entry of an action (any action when
// a is "") that announces typ.
func exampleOf(t *testing.T, a margen.AuditAction, typ margen.EventType) (*margen.AuditEntry, margen.EventPayload) {
	t.Helper()
	for _, e := range examples {
		if a != "" && e.Action != a {
			continue
		}
		evs, err := margen.EventsOf(e)
		if err != nil {
			t.Fatalf("example %d: %v", e.Seq, err)
		}
		for _, ev := range evs {
			if ev.EventType() == typ {
				return e, ev
			}
		}
	}
	return nil, nil
}

const (
	vocabBegin = "<!-- BEGIN GENERATED from events.go and actions.go: edit them, then run `go test . -run TestVocabularyDocCurrent -update` -->\n"
	vocabEnd   = "<!-- END GENERATED vocabulary -->\n"
)

// TestVocabularyDocCurrent fails when the vocabulary in docs/api.md
// differs from what the registries (EventVocabulary, the payload structs,
// AuditActions) and the example entries generate.
func TestVocabularyDocCurrent(t *testing.T) {
	gen := vocabularyDoc(t)
	path := filepath.Join("docs", "api.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, vocabBegin), strings.Index(text, vocabEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers of the generated vocabulary", path)
	}
	if text[i+len(vocabBegin):j] != gen {
		if *update {
			text = text[:i+len(vocabBegin)] + gen + text[j:]
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s is out of date with the vocabulary: run go test . -run TestVocabularyDocCurrent -update", path)
	}
}

func vocabularyDoc(t *testing.T) string {
	var b strings.Builder
	b.WriteString("\n| type | fires when | derived from the audit actions |\n| --- | --- | --- |\n")
	for _, d := range margen.EventVocabulary {
		var from []string
		for _, a := range d.From {
			from = append(from, "`"+string(a)+"`")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", d.Type, d.Doc, strings.Join(from, ", "))
	}
	for _, d := range margen.EventVocabulary {
		fmt.Fprintf(&b, "\n#### `%s`\n\nWhen %s. The payload (Go: `margen.%s`):\n\n", d.Type, d.Doc,
			reflect.TypeOf(d.Payload).Name())
		b.WriteString("| field | type | meaning |\n| --- | --- | --- |\n")
		rt := reflect.TypeOf(d.Payload)
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			doc := f.Tag.Get("doc")
			if name == "" || doc == "" {
				t.Errorf("%s.%s: no json name or no doc tag", rt.Name(), f.Name)
			}
			typ := map[reflect.Kind]string{reflect.String: "string", reflect.Int: "integer", reflect.Int64: "integer",
				reflect.Bool: "boolean", reflect.Map: "object"}[f.Type.Kind()]
			if f.Type == reflect.TypeFor[[]string]() {
				typ = "array of strings"
			}
			if typ == "" {
				t.Errorf("%s.%s: no JSON type for %s", rt.Name(), f.Name, f.Type)
			}
			if strings.Contains(opts, "omitempty") {
				typ += ", omitted when empty"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", name, typ, doc)
		}
		e, p := exampleOf(t, "", d.Type)
		if e == nil {
			t.Errorf("no example entry announces %s", d.Type)
			continue
		}
		body, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n```json\n%s\n```\n", body)
	}

	e, p := exampleOf(t, margen.ActionApprovalApproved, margen.EventApprovalDecided)
	if e == nil {
		t.Fatal("no example of approval.decided")
	}
	line, err := json.Marshal(struct {
		Seq     int64               `json:"seq"`
		Type    margen.EventType    `json:"type"`
		At      time.Time           `json:"at"`
		Actor   string              `json:"actor"`
		Subject string              `json:"subject"`
		Data    margen.EventPayload `json:"data"`
	}{e.Seq, p.EventType(), e.At, e.Actor, e.Subject, p})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "\n#### One event on the stream and as a webhook\n\nThe `approval.decided` above, on the stream:\n\n```text\nid: %d\nevent: %s\ndata: %s\n```\n", e.Seq, p.EventType(), line)
	wh, err := margen.WebhookBody(e, p)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, wh, "", "  "); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "\nand the body of its webhook delivery:\n\n```json\n%s\n```\n", pretty.String())

	b.WriteString("\n### Audit actions\n\nEvery entry of the audit trail (`GET /api/v1/audit`, the audit export) has one of these actions.\n\n")
	b.WriteString("| action | subject | written when | announces |\n| --- | --- | --- | --- |\n")
	announces := map[margen.AuditAction][]string{}
	for _, d := range margen.EventVocabulary {
		for _, a := range d.From {
			announces[a] = append(announces[a], "`"+string(d.Type)+"`")
		}
	}
	for _, a := range margen.AuditActions {
		ann := strings.Join(announces[a.Action], ", ")
		if ann == "" {
			ann = "nothing"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", a.Action, a.Subject, a.Doc, ann)
	}
	b.WriteString("\n")
	return b.String()
}

// TestAuditActionsRegistry: every registered action is well formed,
// documented and registered once.
func TestAuditActionsRegistry(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)
	seen := map[margen.AuditAction]bool{}
	for _, a := range margen.AuditActions {
		if seen[a.Action] {
			t.Errorf("%s registered twice", a.Action)
		}
		seen[a.Action] = true
		if !shape.MatchString(string(a.Action)) || a.Subject == "" || a.Doc == "" {
			t.Errorf("registry entry %+v: malformed or undocumented", a)
		}
		if !a.Action.Known() {
			t.Errorf("%s is not Known", a.Action)
		}
	}
	for _, bad := range []margen.AuditAction{"", "decision.allowed", "Decision.Create"} {
		if bad.Known() {
			t.Errorf("%q is Known", bad)
		}
	}
	for _, s := range []string{margen.ApprovalApproved, margen.ApprovalRejected, margen.ApprovalExpired, margen.Escalated} {
		if a := margen.ResolutionAction(s); !a.Known() {
			t.Errorf("ResolutionAction(%q) = %q", s, a)
		}
	}
	if a := margen.ResolutionAction(margen.ApprovalPending); a != "" {
		t.Errorf("ResolutionAction(pending) = %q", a)
	}
	for _, k := range []string{margen.ImportCustomers, margen.ImportMembers, margen.ImportTeams} {
		if a := margen.ImportAction(k); !a.Known() {
			t.Errorf("ImportAction(%q) = %q", k, a)
		}
	}
	if a := margen.ImportAction("acts"); a != "" {
		t.Errorf(`ImportAction("acts") = %q`, a)
	}
}

// TestVocabularyInCode scans the module's code (not its _test.go files):
// an action or event type is named by its constant, never spelled as a
// literal; nothing converts to AuditAction outside actions.go (the type
// then makes a computed action impossible); an AuditEntry literal names
// no action by a string; and every registered action is written somewhere.
func TestVocabularyInCode(t *testing.T) {
	vocab := map[string]string{} // value -> constant name
	for _, a := range margen.AuditActions {
		vocab[string(a.Action)] = "an Action constant"
	}
	for _, typ := range margen.EventTypesAll {
		vocab[string(typ)] = "an Event constant"
	}
	consts := map[string]bool{} // names of the Action constants
	fset := token.NewFileSet()
	af, err := parser.ParseFile(fset, "actions.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range af.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					consts[n.Name] = true
				}
			}
		}
	}
	if len(consts) != len(margen.AuditActions) {
		t.Errorf("actions.go declares %d constants, AuditActions registers %d", len(consts), len(margen.AuditActions))
	}
	used := map[string]bool{}
	files := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != "." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		root := filepath.Dir(path) == "."
		keys := map[*ast.BasicLit]bool{}
		registry := root && (path == "actions.go" || path == "events.go")
		if path == "actions.go" {
			// Actions written through ResolutionAction and ImportAction.
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok {
					ast.Inspect(fd, func(n ast.Node) bool {
						if id, ok := n.(*ast.Ident); ok && consts[id.Name] {
							used[id.Name] = true
						}
						return true
					})
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BasicLit:
				if x.Kind != token.STRING || registry || keys[x] {
					return true
				}
				if s, err := strconv.Unquote(x.Value); err == nil && vocab[s] != "" {
					t.Errorf("%s: %q spelled out: use %s", fset.Position(x.Pos()), s, vocab[s])
				}
			case *ast.CallExpr:
				if isName(x.Fun, root, "AuditAction") && !registry {
					t.Errorf("%s: converts to AuditAction: use a registered constant", fset.Position(x.Pos()))
				}
				// Catalogue keys of errors may read like an event type
				// ("survey.answered"): they are not the vocabulary.
				if name := funcName(x.Fun); name == "Errorf" || name == "conflictOr" || name == "Invalid" || name == "T" {
					for _, arg := range x.Args {
						if lit, ok := arg.(*ast.BasicLit); ok {
							keys[lit] = true
						}
					}
				}
			case *ast.CompositeLit:
				if !isName(x.Type, root, "AuditEntry") {
					return true
				}
				for _, el := range x.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Action" {
							if _, lit := kv.Value.(*ast.BasicLit); lit {
								t.Errorf("%s: an audit entry's action spelled out", fset.Position(kv.Pos()))
							}
						}
					}
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "margen" && consts[x.Sel.Name] {
					used[x.Sel.Name] = true
				}
			case *ast.Ident:
				if root && !registry && consts[x.Name] {
					used[x.Name] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d files scanned", files)
	}
	for name := range consts {
		if !used[name] {
			t.Errorf("margen.%s is registered but never written", name)
		}
	}
}

// isName reports whether e names the root package's type name (inside the
// root package, or qualified margen.name elsewhere).
func isName(e ast.Expr, root bool, name string) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return root && x.Name == name
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		return ok && id.Name == "margen" && x.Sel.Name == name
	}
	return false
}

func funcName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}
