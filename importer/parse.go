package importer

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/margenhq/margen"
)

// Limits on an import file.
const (
	MaxSize  = 32 << 20  // bytes
	MaxLines = 1_000_000 // data lines
	maxText  = 200       // characters of a name or contact
	maxRef   = 200       // bytes of a customer reference
	maxTag   = 40        // characters of a tag
	maxTags  = 20        // tags per customer
)

// Charsets a file can be read in.
const (
	UTF8        = "utf-8"
	Windows1252 = "windows-1252"
)

var (
	slugPattern  = regexp.MustCompile(`^[a-z0-9-]{2,40}$`)
	loginPattern = regexp.MustCompile(`^[a-z0-9._-]{2,40}$`)
	rolePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// LineError is one problem of one line: its 1-based line number in the
// file, the column at fault (empty for the line as a whole) and a
// catalogue key with its arguments. Message is the rendered text, filled
// by Report.Translate.
type LineError struct {
	Line    int            `json:"line"`
	Field   string         `json:"field,omitempty"`
	Key     string         `json:"key"`
	Args    map[string]any `json:"-"`
	Message string         `json:"message,omitempty"`
}

func lineErr(line int, field, key string, kv ...any) LineError {
	e := margen.Errorf(margen.EINVALID, key, kv...)
	return LineError{Line: line, Field: field, Key: key, Args: e.Args}
}

// Row is one good line: its number, its key and the record it describes
// (only the pointer of the file's kind is set). A column the file does not
// have leaves that field of an existing record as it is (see File.Has).
type Row struct {
	Line     int
	Key      string
	Customer *margen.Customer // set for customers
	Member   *margen.Member   // set for members
	Team     *margen.Team     // set for teams
	// keepActive marks a member line whose active cell is empty: an
	// existing member keeps their state (a new one is active).
	keepActive bool
}

// File is a parsed import file.
type File struct {
	Kind      string
	Charset   string
	Separator string
	// Columns are the canonical names of the header's columns.
	Columns []string
	Rows    []Row
	Errors  []LineError
	// Lines is how many data lines (records) the file has.
	Lines int
}

// Has reports whether the file has the column.
func (f *File) Has(col string) bool { return slices.Contains(f.Columns, col) }

// column is one column of a kind: its canonical name, the aliases a header
// may use for it (Spanish and English) and whether it is required.
type column struct {
	name     string
	aliases  []string
	required bool
}

// Columns of each kind, in documented order.
var kinds = map[string][]column{
	margen.ImportCustomers: {
		{"ref", []string{"referencia"}, true},
		{"name", []string{"nombre"}, false},
		{"contact", []string{"contacto"}, false},
		{"tags", []string{"etiquetas"}, false},
	},
	margen.ImportMembers: {
		{"login", []string{"usuario"}, true},
		{"name", []string{"nombre"}, true},
		{"role", []string{"rol"}, true},
		{"access", []string{"acceso"}, false},
		{"team", []string{"equipo"}, false},
		{"language", []string{"idioma"}, false},
		{"active", []string{"activo"}, false},
	},
	margen.ImportTeams: {
		{"slug", nil, true},
		{"name", []string{"nombre"}, true},
	},
}

// Kinds lists the import kinds.
func Kinds() []string {
	return []string{margen.ImportCustomers, margen.ImportMembers, margen.ImportTeams}
}

// ColumnNames returns the canonical column names of a kind, in documented
// order (nil for an unknown kind).
func ColumnNames(kind string) []string {
	var out []string
	for _, c := range kinds[kind] {
		out = append(out, c.name)
	}
	return out
}

// headerErr is a problem with the file as a whole, reported at line 1.
func headerErr(key string, kv ...any) error {
	e := margen.Errorf(margen.EINVALID, key, kv...)
	e.Field = "header"
	return e
}

// Decode returns the file's text as UTF-8 and the charset it was written
// in: UTF-8 (a byte order mark is dropped) when it is valid UTF-8,
// otherwise Windows-1252, the "ANSI" encoding of Excel in Spanish, where
// every byte is a character. UTF-16 (Excel's "Unicode text") and binary
// files are refused.
func Decode(data []byte) ([]byte, string, error) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return nil, "", headerErr("error.import_utf16")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, "", headerErr("error.import_binary")
	}
	if b, ok := bytes.CutPrefix(data, []byte{0xEF, 0xBB, 0xBF}); ok {
		data = b
		if !utf8.Valid(data) {
			return nil, "", headerErr("error.import_bad_utf8")
		}
		return data, UTF8, nil
	}
	if utf8.Valid(data) {
		return data, UTF8, nil
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(data)
	if err != nil {
		return nil, "", headerErr("error.import_bad_utf8")
	}
	return out, Windows1252, nil
}

// Separator detects the separator from the header line: the one of ";"
// and "," that occurs more often outside quotes (Excel in Spanish writes
// ";", since "," is the decimal mark there).
func Separator(text []byte) (rune, error) {
	line, _, _ := bytes.Cut(text, []byte{'\n'})
	semi, comma, quoted := 0, 0, false
	for _, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == ';':
			semi++
		case c == ',':
			comma++
		}
	}
	switch {
	case semi == 0 && comma == 0:
		return 0, headerErr("error.import_separator")
	case semi >= comma:
		return ';', nil
	}
	return ',', nil
}

// Parse reads an import file of the given kind: encoding, separator,
// header, then every line, each validated on its own. Problems with the
// file as a whole (encoding, header, size) are returned as an error;
// problems of lines are collected in File.Errors.
func Parse(kind string, data []byte) (*File, error) {
	cols, ok := kinds[kind]
	if !ok {
		return nil, margen.Invalid("kind", "error.invalid_value", "field", "kind", "allowed", strings.Join(Kinds(), ", "))
	}
	if len(data) > MaxSize {
		return nil, margen.Errorf(margen.ETOOLARGE, "error.body_too_large", "max", MaxSize)
	}
	text, charset, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(text)) == 0 {
		return nil, headerErr("error.import_empty")
	}
	// Excel may start the file with a "sep=;" line naming the separator.
	offset, sep := 0, rune(0)
	if first, rest, ok := bytes.Cut(text, []byte{'\n'}); ok && len(bytes.TrimRight(first, "\r")) == 5 &&
		bytes.HasPrefix(bytes.ToLower(first), []byte("sep=")) && (first[4] == ';' || first[4] == ',') {
		text, offset, sep = rest, 1, rune(first[4])
	}
	if sep == 0 {
		if sep, err = Separator(text); err != nil {
			return nil, err
		}
	}
	f := &File{Kind: kind, Charset: charset, Separator: string(sep),
		Rows: make([]Row, 0, min(bytes.Count(text, []byte{'\n'}), MaxLines))}
	r := csv.NewReader(bytes.NewReader(text))
	r.Comma = sep
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, headerErr("error.import_header_syntax", "detail", csvDetail(err))
	}
	idx, err := mapHeader(cols, header)
	if err != nil {
		return nil, err
	}
	for _, c := range cols {
		if idx[c.name] >= 0 {
			f.Columns = append(f.Columns, c.name)
		}
	}
	seen := make(map[string]int)
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			f.Lines++
			f.Errors = append(f.Errors, lineErr(pe.StartLine+offset, "", "error.import_csv", "detail", csvDetail(err)))
			continue
		}
		if err != nil {
			return nil, headerErr("error.import_csv", "detail", err.Error())
		}
		f.Lines++
		if f.Lines > MaxLines {
			return nil, margen.Errorf(margen.ETOOLARGE, "error.import_too_many_lines", "max", MaxLines)
		}
		line, _ := r.FieldPos(0)
		line += offset
		row, errs := parseRow(kind, line, header, idx, rec)
		if len(errs) == 0 {
			if first, dup := seen[row.Key]; dup {
				errs = append(errs, lineErr(line, cols[0].name, "error.import_duplicate", "value", row.Key, "line", first))
			} else {
				seen[row.Key] = line
			}
		}
		if len(errs) > 0 {
			f.Errors = append(f.Errors, errs...)
			continue
		}
		f.Rows = append(f.Rows, row)
	}
	return f, nil
}

// csvDetail is the reason of a CSV syntax error without its position
// (which the report gives as the line).
func csvDetail(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// mapHeader maps each column of the kind to its index in the header (-1
// when absent). Names are matched without case, accents or surrounding
// space; unknown, repeated and missing required columns are refused.
func mapHeader(cols []column, header []string) (map[string]int, error) {
	idx := make(map[string]int, len(cols))
	for _, c := range cols {
		idx[c.name] = -1
	}
	var names []string
	for _, c := range cols {
		names = append(names, c.name)
	}
	for i, h := range header {
		h = fold(h)
		if h == "" && i == len(header)-1 && i > 0 {
			continue // a trailing separator
		}
		name := ""
		for _, c := range cols {
			if h == c.name || slices.Contains(c.aliases, h) {
				name = c.name
			}
		}
		switch {
		case name == "":
			return nil, headerErr("error.import_unknown_column", "column", header[i], "allowed", strings.Join(names, ", "))
		case idx[name] >= 0:
			return nil, headerErr("error.import_repeated_column", "column", name)
		}
		idx[name] = i
	}
	var missing []string
	for _, c := range cols {
		if c.required && idx[c.name] < 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return nil, headerErr("error.import_missing_columns", "columns", strings.Join(missing, ", "))
	}
	return idx, nil
}

// fold lowercases a header name and drops accents, so "Código", "Teléfono"
// and "ROL" match.
func fold(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	r := strings.NewReplacer("á", "a", "é", "e", "í", "i", "ó", "o", "ú", "u", "ü", "u", "ñ", "n")
	return r.Replace(s)
}

// cells gives a line's values by column name, trimmed.
type cells struct {
	line int
	rec  []string
	idx  map[string]int
	errs []LineError
}

// get returns the trimmed value of a column ("" when the file has no such
// column) and refuses control characters.
func (c *cells) get(col string) string {
	i := c.idx[col]
	if i < 0 || i >= len(c.rec) {
		return ""
	}
	v := strings.TrimSpace(c.rec[i])
	if strings.ContainsFunc(v, unicode.IsControl) {
		c.fail(col, "error.import_control")
		return ""
	}
	return v
}

func (c *cells) fail(col, key string, kv ...any) {
	c.errs = append(c.errs, lineErr(c.line, col, key, kv...))
}

// text checks a free-text value: required or not, at most maxText characters.
func (c *cells) text(col string, required bool) string {
	v := c.get(col)
	switch {
	case v == "" && required:
		c.fail(col, "error.required", "field", col)
	case utf8.RuneCountInString(v) > maxText:
		c.fail(col, "error.too_long", "field", col, "max", maxText)
	}
	return v
}

// pattern checks an identifier.
func (c *cells) pattern(col string, re *regexp.Regexp, key string, required bool) string {
	v := c.get(col)
	switch {
	case v == "" && required:
		c.fail(col, "error.required", "field", col)
	case v != "" && !re.MatchString(v):
		c.fail(col, key, "value", v)
	}
	return v
}

func parseRow(kind string, line int, header []string, idx map[string]int, rec []string) (Row, []LineError) {
	c := &cells{line: line, rec: rec, idx: idx}
	if len(rec) < len(header) {
		c.fail("", "error.import_field_count", "got", len(rec), "want", len(header))
		return Row{}, c.errs
	}
	for _, extra := range rec[len(header):] {
		if strings.TrimSpace(extra) != "" {
			c.fail("", "error.import_field_count", "got", len(rec), "want", len(header))
			return Row{}, c.errs
		}
	}
	row := Row{Line: line}
	switch kind {
	case margen.ImportCustomers:
		x := &margen.Customer{}
		row.Customer = x
		x.Ref = c.get("ref")
		switch {
		case x.Ref == "":
			c.fail("ref", "error.required", "field", "ref")
		case len(x.Ref) > maxRef:
			c.fail("ref", "error.too_long", "field", "ref", "max", maxRef)
		}
		x.Name = c.text("name", false)
		x.Contact = c.text("contact", false)
		x.Tags = c.tags("tags")
		row.Key = x.Ref
	case margen.ImportMembers:
		x := &margen.Member{}
		row.Member = x
		x.Login = c.pattern("login", loginPattern, "error.import_login", true)
		x.Name = c.text("name", true)
		x.Role = c.pattern("role", rolePattern, "error.import_role_id", true)
		x.Access = strings.ToLower(c.get("access"))
		if x.Access != "" && margen.AccessRank(x.Access) == 0 {
			c.fail("access", "error.invalid_value", "field", "access", "allowed", "owner, manager, supervisor, frontline")
		}
		x.Team = c.pattern("team", slugPattern, "error.import_slug", false)
		x.Language = strings.ToLower(c.get("language"))
		if x.Language != "" && x.Language != "es" && x.Language != "en" {
			c.fail("language", "error.invalid_value", "field", "language", "allowed", "es, en")
		}
		x.Active = true
		if v := c.get("active"); v != "" {
			b, ok := parseBool(v)
			if !ok {
				c.fail("active", "error.invalid_value", "field", "active", "allowed", "true, false, sí, no, 1, 0")
			}
			x.Active = b
		} else {
			row.keepActive = true
		}
		row.Key = x.Login
	case margen.ImportTeams:
		x := &margen.Team{}
		row.Team = x
		x.Slug = c.pattern("slug", slugPattern, "error.import_slug", true)
		x.Name = c.text("name", true)
		row.Key = x.Slug
	}
	return row, c.errs
}

// tags splits a tags cell on "|" or ",", trimmed, without empties or
// repeats.
func (c *cells) tags(col string) []string {
	v := c.get(col)
	out := []string{}
	for _, t := range strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ',' }) {
		t = strings.TrimSpace(t)
		if t == "" || slices.Contains(out, t) {
			continue
		}
		if utf8.RuneCountInString(t) > maxTag {
			c.fail(col, "error.import_tag_too_long", "value", t, "max", maxTag)
			continue
		}
		out = append(out, t)
	}
	if len(out) > maxTags {
		c.fail(col, "error.import_too_many_tags", "max", maxTags)
	}
	return out
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "si", "sí", "yes", "y", "s", "x", "verdadero":
		return true, true
	case "no", "n", "falso":
		return false, true
	}
	b, err := strconv.ParseBool(v)
	return b, err == nil
}
