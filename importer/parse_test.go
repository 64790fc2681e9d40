package importer

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/margenhq/margen"
)

func TestDecodeDetectsCharset(t *testing.T) {
	latin, err := charmap.Windows1252.NewEncoder().String("ref;nombre\nc1;José Muñoz\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in, charset string
	}{
		{"utf-8", "ref;nombre\nc1;José Muñoz\n", UTF8},
		{"utf-8 bom", "\xEF\xBB\xBFref;nombre\nc1;José Muñoz\n", UTF8},
		{"windows-1252", latin, Windows1252},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(margen.ImportCustomers, []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if f.Charset != tc.charset {
				t.Errorf("charset %q, want %q", f.Charset, tc.charset)
			}
			if len(f.Errors) > 0 || len(f.Rows) != 1 {
				t.Fatalf("rows %v errors %v", f.Rows, f.Errors)
			}
			if got := f.Rows[0].Customer; got.Ref != "c1" || got.Name != "José Muñoz" {
				t.Errorf("read %+v, want ref c1 name José Muñoz", got)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"utf-16":          "\xFF\xFEr\x00e\x00f\x00",
		"binary":          "ref,name\nc1,a\x00b\n",
		"bom bad utf-8":   "\xEF\xBB\xBFref,name\nc1,\xE9\n",
		"empty":           "  \n",
		"no separator":    "ref\nc1\n",
		"unknown column":  "ref,name,shoe_size\nc1,a,42\n",
		"repeated column": "ref,name,nombre\nc1,a,b\n",
		"missing column":  "name,contact\na,b\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(margen.ImportCustomers, []byte(in))
			var me *margen.Error
			if !asErr(err, &me) || me.Field != "header" {
				t.Fatalf("err %v, want a header error", err)
			}
		})
	}
}

func asErr(err error, me **margen.Error) bool {
	e, ok := err.(*margen.Error)
	*me = e
	return ok
}

func TestSeparatorFromHeader(t *testing.T) {
	for _, tc := range []struct {
		in  string
		sep string
	}{
		{"ref;name;tags\nc1;Ana, la de siempre;vip,frecuente\n", ";"},
		{"ref,name,tags\nc1,\"Ana; la de siempre\",\"vip|frecuente\"\n", ","},
		// Quoted separators in the header do not count.
		{"\"ref\",\"name;x\"\n", ","},
	} {
		sep, err := Separator([]byte(tc.in))
		if err != nil || string(sep) != tc.sep {
			t.Errorf("Separator(%q) = %q, %v; want %q", tc.in, sep, err, tc.sep)
		}
	}
	f, err := Parse(margen.ImportCustomers, []byte("Referencia;Nombre;Etiquetas\nc1;Ana, la de siempre;vip,frecuente\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Rows[0].Customer
	if c.Name != "Ana, la de siempre" || !slices.Equal(c.Tags, []string{"vip", "frecuente"}) {
		t.Errorf("read %+v", c)
	}
}

// Every bad line is reported with its line number and field, and the good
// ones are kept.
func TestParseReportsEveryBadLine(t *testing.T) {
	in := strings.Join([]string{
		"ref,name,contact,tags",      // 1
		"c1,Ana,ana@example.com,vip", // 2 good
		",Sin referencia,,",          // 3 ref required
		"c3,\"Multi\nline name\",,",  // 4-5 a quoted newline: a control character in a name
		"c1,Again,,",                 // 6 duplicate of line 2
		"c5,Tab\tin name,,",          // 7 control character
		"c6,too,many,fields,here",    // 8 field count
		"c7,\"unterminated,,",        // 9 csv syntax (runs to the end)
	}, "\n")
	f, err := Parse(margen.ImportCustomers, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	type le struct {
		line  int
		field string
	}
	var got []le
	for _, e := range f.Errors {
		got = append(got, le{e.Line, e.Field})
	}
	want := []le{{3, "ref"}, {4, "name"}, {6, "ref"}, {7, "name"}, {8, ""}, {9, ""}}
	if !slices.Equal(got, want) {
		t.Errorf("errors at %v, want %v (%+v)", got, want, f.Errors)
	}
	var refs []string
	for _, r := range f.Rows {
		refs = append(refs, r.Key)
	}
	if !slices.Equal(refs, []string{"c1"}) {
		t.Errorf("good rows %v, want c1", refs)
	}
}

// Excel may write a "sep=;" line before the header; line numbers still
// count it.
func TestParseExcelSepLine(t *testing.T) {
	f, err := Parse(margen.ImportCustomers, []byte("sep=;\r\nref;nombre\r\nc1;Ana, la de siempre, y su hermana\r\n;Sin ref\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Separator != ";" || len(f.Rows) != 1 || f.Rows[0].Customer.Name != "Ana, la de siempre, y su hermana" || len(f.Errors) != 1 || f.Errors[0].Line != 4 {
		t.Errorf("rows %+v errors %+v", f.Rows, f.Errors)
	}
}

func TestParseMembersAndTeams(t *testing.T) {
	f, err := Parse(margen.ImportMembers, []byte("usuario;nombre;rol;acceso;equipo;idioma;activo\n"+
		"ana;Ana;cashier;frontline;salon;es;sí\n"+
		"Bad Login;B;cashier;;;;\n"+
		"carl;;9x;boss;Salon;fr;maybe\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rows) != 1 || f.Rows[0].Member.Login != "ana" || !f.Rows[0].Member.Active {
		t.Fatalf("rows %+v", f.Rows)
	}
	var fields []string
	for _, e := range f.Errors {
		fields = append(fields, e.Field)
	}
	want := []string{"login", "name", "role", "access", "team", "language", "active"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields at fault %v, want %v", fields, want)
	}
	f, err = Parse(margen.ImportTeams, []byte("slug,name\nsalon,Salón\nx,X\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Rows) != 1 || len(f.Errors) != 1 || f.Errors[0].Line != 3 || f.Errors[0].Field != "slug" {
		t.Errorf("rows %+v errors %+v", f.Rows, f.Errors)
	}
}

func TestCheckMembersAgainstOrg(t *testing.T) {
	f, err := Parse(margen.ImportMembers, []byte("login,name,role,access,team\n"+
		"ana,Ana,cashier,frontline,salon\n"+
		"bob,Bob,pilot,frontline,salon\n"+
		"cid,Cid,cashier,frontline,kitchen\n"+
		"dan,Dan,manager,owner,\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.Check(Env{ActorAccess: margen.AccessManager, Teams: map[string]bool{"salon": true},
		Roles: map[string]bool{"cashier": true, "manager": true}})
	var got []string
	for _, e := range f.Errors {
		got = append(got, e.Field+":"+e.Key)
	}
	want := []string{"role:error.import_unknown_role", "team:error.import_unknown_team", "access:error.import_access_above"}
	if !slices.Equal(got, want) {
		t.Errorf("errors %v, want %v", got, want)
	}
	if len(f.Rows) != 1 || f.Rows[0].Key != "ana" {
		t.Errorf("good rows %+v, want ana", f.Rows)
	}
}
