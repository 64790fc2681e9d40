package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// Languages are the languages of the catalogue; the first is the default.
var Languages = []string{"es", "en"}

// Default is the language used when nothing better is known.
const Default = "es"

// Every locales/*.LANG.json file belongs to the catalogue: one file per
// area (active.LANG.json holds the API's messages), all merged per language.
//
//go:embed locales/*.json
var locales embed.FS

var matcher = language.NewMatcher([]language.Tag{language.Spanish, language.English})

// Catalog holds every message in every language. It is immutable after New
// and safe for concurrent use.
type Catalog struct {
	msgs map[string]map[string]string // lang -> key -> text
}

// New loads the embedded catalogue files. It fails when a file is missing or
// does not parse, when a message is empty, or when a key exists in one
// language and not in the other: a broken catalogue must stop the start, not
// show a raw key to someone at the counter.
func New() (*Catalog, error) {
	return load(locales, "locales")
}

func load(fsys embed.FS, dir string) (*Catalog, error) {
	bundle := goi18n.NewBundle(language.Spanish)
	bundle.RegisterUnmarshalFunc("json", json.Unmarshal)
	c := &Catalog{msgs: make(map[string]map[string]string, len(Languages))}
	for _, lang := range Languages {
		paths, err := fs.Glob(fsys, dir+"/*."+lang+".json")
		if err != nil || len(paths) == 0 {
			return nil, fmt.Errorf("i18n: no catalogue files for %q in %s", lang, dir)
		}
		m := make(map[string]string)
		for _, path := range paths {
			mf, err := bundle.LoadMessageFileFS(fsys, path)
			if err != nil {
				return nil, fmt.Errorf("i18n: load %s: %w", path, err)
			}
			if len(mf.Messages) == 0 {
				return nil, fmt.Errorf("i18n: %s has no messages", path)
			}
			for _, msg := range mf.Messages {
				if strings.TrimSpace(msg.Other) == "" {
					return nil, fmt.Errorf("i18n: %s: message %q is empty", path, msg.ID)
				}
				if _, dup := m[msg.ID]; dup {
					return nil, fmt.Errorf("i18n: %s: message %q is defined twice", path, msg.ID)
				}
				m[msg.ID] = msg.Other
			}
		}
		c.msgs[lang] = m
	}
	for _, lang := range Languages[1:] {
		if missing := diff(c.msgs[Default], c.msgs[lang]); len(missing) > 0 {
			return nil, fmt.Errorf("i18n: keys missing in %q: %s", lang, strings.Join(missing, ", "))
		}
		if missing := diff(c.msgs[lang], c.msgs[Default]); len(missing) > 0 {
			return nil, fmt.Errorf("i18n: keys missing in %q: %s", Default, strings.Join(missing, ", "))
		}
	}
	return c, nil
}

// diff returns the keys of a that b lacks, sorted.
func diff(a, b map[string]string) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Keys returns every key of the catalogue, sorted.
func (c *Catalog) Keys() []string {
	return slices.Sorted(maps.Keys(c.msgs[Default]))
}

// Has reports whether the catalogue has a message for key in lang.
func (c *Catalog) Has(lang, key string) bool {
	_, ok := c.msgs[lang][key]
	return ok
}

// Match picks the catalogue language for an Accept-Language header value
// or a language tag ("es-CO", "en"). Anything not clearly English is Spanish.
func Match(acceptLanguage string) string {
	if strings.TrimSpace(acceptLanguage) == "" {
		return Default
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return Default
	}
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return Default
	}
	return Languages[idx]
}

// normalize maps any language value to a catalogue language.
func normalize(lang string) string {
	for _, l := range Languages {
		if lang == l {
			return l
		}
	}
	return Match(lang)
}

// T renders the message key in lang with args filling its {name}
// placeholders. A key the catalogue does not know renders as the key itself
// (the catalogue test makes sure that never happens for keys in the code).
// Money arguments are not formatted as money: use Format for that.
func (c *Catalog) T(lang, key string, args map[string]any) string {
	return c.Format(lang, "", key, args)
}

// Format is T with the currency of money arguments: for explanation keys
// (explain.*) the arguments amount, max, remaining, limit and used, and for
// error.amount_too_large the argument max, are minor units of currency and
// are written as money (see FormatMoney). Other arguments are written as
// follows: a map of language to text (a policy's forbid reason) picks lang;
// "sla" (a Go duration) reads as "1 h 30 min"; "period" (day, week, month)
// and "what" (decision, act...) are translated when the catalogue knows them.
func (c *Catalog) Format(lang, currency, key string, args map[string]any) string {
	lang = normalize(lang)
	text, ok := c.msgs[lang][key]
	if !ok {
		if text, ok = c.msgs[Default][key]; !ok {
			return key
		}
	}
	if !strings.Contains(text, "{") {
		return text
	}
	money := moneyArgs(key)
	var b strings.Builder
	b.Grow(len(text) + 32)
	for {
		i := strings.IndexByte(text, '{')
		if i < 0 {
			b.WriteString(text)
			break
		}
		j := strings.IndexByte(text[i:], '}')
		if j < 0 {
			b.WriteString(text)
			break
		}
		name := text[i+1 : i+j]
		if !isName(name) {
			// Not a placeholder (a JSON example in the text): keep it.
			b.WriteString(text[:i+1])
			text = text[i+1:]
			continue
		}
		b.WriteString(text[:i])
		b.WriteString(c.arg(lang, currency, name, args[name], slices.Contains(money, name)))
		text = text[i+j+1:]
	}
	return b.String()
}

// Explain renders a decision explanation code. It prefers a variant of the
// message that fits the arguments: explain.<code>.approval when an approver
// was asked, explain.<code>.remaining when the remaining budget is known.
func (c *Catalog) Explain(lang, currency, code string, args map[string]any) string {
	key := "explain." + code
	if !c.Has(Default, key) {
		key = "explain.other"
	}
	if o, ok := args["after_the_fact"].(string); ok && c.Has(Default, "explain.after_the_fact."+o) {
		// An act reported after it was done: what was recorded.
		return c.Format(lang, currency, "explain.after_the_fact."+o, args)
	}
	if _, ok := args["approver"]; ok && c.Has(Default, key+".approval") {
		key += ".approval"
	} else if _, ok := args["remaining"]; ok && c.Has(Default, key+".remaining") {
		key += ".remaining"
	} else if _, ok := args["condition"]; ok && c.Has(Default, key+".condition") {
		key += ".condition"
	}
	return c.Format(lang, currency, key, args)
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

func moneyArgs(key string) []string {
	switch {
	case strings.HasPrefix(key, "explain."):
		return []string{"amount", "max", "remaining", "limit", "used"}
	case key == "error.amount_too_large":
		return []string{"max"}
	}
	return nil
}

// arg writes one argument value.
func (c *Catalog) arg(lang, currency, name string, v any, money bool) string {
	if v == nil {
		return ""
	}
	if money {
		if n, ok := integer(v); ok {
			return FormatMoney(lang, currency, n)
		}
	}
	switch x := v.(type) {
	case string:
		switch name {
		case "sla":
			if d, err := time.ParseDuration(x); err == nil {
				return FormatDuration(d)
			}
		case "period", "what":
			if t, ok := c.msgs[lang][name+"."+x]; ok {
				return t
			}
		}
		return x
	case map[string]string:
		// A sentence inside a sentence: drop its final period.
		return strings.TrimRight(pick(lang, func(l string) (string, bool) { s, ok := x[l]; return s, ok }), ". ")
	case map[string]any:
		return strings.TrimRight(pick(lang, func(l string) (string, bool) { s, ok := x[l].(string); return s, ok }), ". ")
	case []string:
		return strings.Join(x, ", ")
	case time.Duration:
		return FormatDuration(x)
	}
	if n, ok := integer(v); ok {
		return groupDigits(lang, strconv.FormatInt(n, 10))
	}
	return fmt.Sprint(v)
}

// pick chooses the text in lang, else Spanish, else English.
func pick(lang string, get func(string) (string, bool)) string {
	for _, l := range []string{lang, Default, "en"} {
		if s, ok := get(l); ok {
			return s
		}
	}
	return ""
}

// integer converts the integer kinds arguments arrive as, including the
// float64 and json.Number of an explanation read back from JSON.
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

// FormatDuration writes a duration as hours and minutes ("10 min",
// "2 h", "1 h 30 min"), from two days on as days and hours ("72 d 10 h"),
// the same in both languages.
func FormatDuration(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(d.Seconds())) + " s"
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	if h >= 48 {
		// Days ago, not thousands of hours: "72 d 10 h".
		if h%24 == 0 {
			return strconv.Itoa(h/24) + " d"
		}
		return strconv.Itoa(h/24) + " d " + strconv.Itoa(h%24) + " h"
	}
	switch {
	case h == 0:
		return strconv.Itoa(m) + " min"
	case m == 0:
		return strconv.Itoa(h) + " h"
	}
	return strconv.Itoa(h) + " h " + strconv.Itoa(m) + " min"
}
