package margen_test

import (
	"strings"
	"testing"

	"github.com/margenhq/margen"
)

func TestCheckText(t *testing.T) {
	for _, c := range []struct {
		s         string
		multiline bool
		max       int
		key       string
	}{
		{"mesa-12", margen.TextLine, 200, ""},
		{"Señora Díaz ☕", margen.TextLine, 200, ""},
		{"", margen.TextLine, 200, ""},
		{"a\x00b", margen.TextLine, 200, "error.text_control"},
		{"a\x00b", margen.TextBlock, 200, "error.text_control"},
		{"\xff\xfe", margen.TextLine, 200, "error.text_encoding"},
		{"caf\xc3", margen.TextBlock, 200, "error.text_encoding"},
		{"line\nbreak", margen.TextLine, 200, "error.text_control"},
		{"line\nbreak\tand\r\n", margen.TextBlock, 200, ""},
		{"del\x7f", margen.TextBlock, 200, "error.text_control"},
		{"c1\u0085", margen.TextBlock, 200, "error.text_control"},
		{"esc\x1b[31m", margen.TextBlock, 200, "error.text_control"},
		{strings.Repeat("x", 201), margen.TextLine, 200, "error.too_long"},
		{strings.Repeat("x", 201), margen.TextLine, 0, ""},
	} {
		err := margen.CheckText("f", c.s, c.max, c.multiline)
		got := ""
		if err != nil {
			got = err.(*margen.Error).Key
			if f := err.(*margen.Error).Field; f != "f" {
				t.Errorf("%q: field %q", c.s, f)
			}
		}
		if got != c.key {
			t.Errorf("CheckText(%q, multiline=%v, max=%d) = %q, want %q", c.s, c.multiline, c.max, got, c.key)
		}
	}
}

func TestCheckJSONText(t *testing.T) {
	for _, c := range []struct {
		json, field, key string
	}{
		{`{"action":"gift","customer":{"ref":"mesa-12","tags":["vip"]}}`, "", ""},
		{`{"reason":"caf\u00e9 \u2603\nline"}`, "", ""},
		{`{"customer":{"ref":"\u0000"}}`, "customer.ref", "error.text_control"},
		{`{"customer":{"tags":["ok","a\u0001"]}}`, "customer.tags[1]", "error.text_control"},
		{"{\"reason\":\"\xff\xfe\"}", "reason", "error.text_encoding"},
		{`{"context":{"a\u0000":1}}`, "context", "error.text_control"},
		{`{"context":{"list":[1,{"x":"\u0000"}]}}`, "context.list[1].x", "error.text_control"},
		{`"\u0000"`, "(body)", "error.text_control"},
		{`{"a":"\\u0000 is how JSON writes NUL"}`, "", ""},
		{`{"a":"\u00e9\u00F1\t\n"}`, "", ""},
		{`{"a":"x\u007F"}`, "a", "error.text_control"},
		{`{"a":["\u0085"]}`, "a[0]", "error.text_control"},
		{`{"a":[[],{"b":"ok"}],"c":"` + strings.Repeat("x", 100) + `"}`, "c", "error.too_long"},
	} {
		err := margen.CheckJSONText("", []byte(c.json), 50)
		got, field := "", ""
		if err != nil {
			got, field = err.(*margen.Error).Key, err.(*margen.Error).Field
		}
		if got != c.key || field != c.field {
			t.Errorf("CheckJSONText(%s) = %q at %q, want %q at %q", c.json, got, field, c.key, c.field)
		}
	}
}

func BenchmarkCheckJSONText(b *testing.B) {
	plain := []byte(`{"action":"courtesy_gift","amount":800000,"customer":{"ref":"mesa-12","tags":["vip"]},"reason":"cumpleaños de la mesa 12, pan extra","context":{"order_total":3000000}}`)
	escaped := []byte(`{"action":"courtesy_gift","amount":800000,"customer":{"ref":"mesa-12","tags":["vip"]},"reason":"cumplea\u00f1os de la mesa 12, pan extra","context":{"order_total":3000000}}`)
	for _, c := range []struct {
		name string
		body []byte
	}{{"plain", plain}, {"escaped", escaped}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if err := margen.CheckJSONText("", c.body, 8<<10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
