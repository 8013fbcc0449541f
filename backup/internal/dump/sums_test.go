package dump

import (
	"reflect"
	"testing"

	"github.com/mylittleshopping/shop/backup/internal/pgsums"
)

// TestSumsFinder: only the script's last non-empty line counts as the
// sums, however the stream is cut into writes.
func TestSumsFinder(t *testing.T) {
	set := &pgsums.Set{Schema: "orders:2", Tables: map[string]pgsums.Figures{`public."we""ird"`: {Rows: 3, Sum: "-42"}}}
	line, err := sumsLine(set)
	if err != nil {
		t.Fatal(err)
	}
	footer := "--\n-- PostgreSQL database dump complete\n--\n\n"
	// A table's data row that starts like the sums.
	lookalike := "COPY public.notes (body) FROM stdin;\n" + SumsPrefix + `{"schema":"forged","tables":{}}` + "\n\\.\n\n"
	tests := []struct {
		name, script string
		want         *pgsums.Set
	}{
		{"sums last", "SET x;\n" + footer + line, set},
		{"no newline after the sums", footer + line[:len(line)-1], set},
		{"empty lines after the sums", footer + line + "\n\n", set},
		{"before sums", "SET x;\n" + footer, nil},
		{"a data row like the sums, then the footer", lookalike + footer, nil},
		{"a data row like the sums, the footer, the sums", lookalike + footer + line, set},
		{"the sums then more SQL", line + "SELECT 1;\n", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 7, len(tt.script) + 1} {
			var f sumsFinder
			for i := 0; i < len(tt.script); i += step {
				f.Write([]byte(tt.script[i:min(i+step, len(tt.script))]))
			}
			got, err := f.sums()
			if err != nil {
				t.Fatalf("%s (writes of %d): %v", tt.name, step, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s (writes of %d): got %+v, want %+v", tt.name, step, got, tt.want)
			}
		}
	}
	var f sumsFinder
	f.Write([]byte(SumsPrefix + "{not json\n"))
	if _, err := f.sums(); err == nil {
		t.Error("unreadable sums: no error")
	}
}
