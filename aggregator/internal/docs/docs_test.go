package docs

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mylittleshopping/shop/openapi"
)

// TestRenderShop renders the public spec and checks that every operation
// and schema is on the page, and that the page loads nothing.
func TestRenderShop(t *testing.T) {
	t.Parallel()
	spec, err := openapi.Bundle(openapi.FS, "shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	page, err := Render(spec)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !strings.Contains(html, `id="op-`+op.OperationID+`"`) {
				t.Errorf("%s %s (%s) is not on the page", method, path, op.OperationID)
			}
		}
	}
	for name := range doc.Components.Schemas {
		if !strings.Contains(html, `id="schema-`+name+`"`) {
			t.Errorf("schema %s is not on the page", name)
		}
	}
	for _, s := range []string{"<script", "src=", "@import", "url("} {
		if strings.Contains(html, s) {
			t.Errorf("the page contains %q; it must need nothing from elsewhere", s)
		}
	}
	// Descriptions are escaped text with a little markup.
	if !strings.Contains(html, "<code>Idempotency-Key</code>") {
		t.Error("inline code of descriptions is not rendered")
	}
}

func TestRenderRefusesABrokenSpec(t *testing.T) {
	t.Parallel()
	if _, err := Render([]byte("openapi: 3.0.3\ninfo: {title: x}\npaths: {}\n")); err == nil {
		t.Error("a spec without a version rendered")
	}
}

func TestProseEscapes(t *testing.T) {
	t.Parallel()
	got := string(prose("a <b> & `c<d>`\n\n- one\n- **two**"))
	want := "<p>a &lt;b&gt; &amp; <code>c&lt;d&gt;</code></p><ul><li>one</li><li><strong>two</strong></li></ul>"
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
