package openapi_test

import (
	"context"
	"io/fs"
	"sort"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mylittleshopping/shop/openapi"
)

// specs lists every spec of the folder; the test fails on an empty folder
// rather than passing vacuously.
func specs(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(openapi.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no spec in openapi/")
	}
	sort.Strings(names)
	return names
}

// TestSpecsAreValid loads each spec with kin-openapi, its references to
// the other specs resolved, and validates it against OpenAPI 3.0, then
// checks the house rules every API follows.
func TestSpecsAreValid(t *testing.T) {
	t.Parallel()
	for _, name := range specs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc, err := openapi.Load(openapi.FS, name)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatalf("invalid OpenAPI: %v", err)
			}
			checkHouseRules(t, doc)
		})
	}
}

// foreignErrors marks an operation that mimics a third party's API
// (the mail sink's Mailjet send) and so answers errors in that party's
// format instead of problem+json.
const foreignErrors = "x-foreign-error-format"

func checkHouseRules(t *testing.T, doc *openapi3.T) {
	t.Helper()
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId (generated code names methods after it)", where)
			} else if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q already used by %s", where, op.OperationID, prev)
			}
			ids[op.OperationID] = where
			if op.Summary == "" {
				t.Errorf("%s: no summary", where)
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for ct := range op.RequestBody.Value.Content {
					if ct != "application/json" {
						t.Errorf("%s: request body %q, want application/json", where, ct)
					}
				}
			}
			if _, foreign := op.Extensions[foreignErrors]; foreign {
				continue
			}
			if op.Responses == nil {
				continue
			}
			for code, resp := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if code != "default" && (err != nil || n < 400) {
					continue
				}
				if resp.Value == nil || resp.Value.Content.Get("application/problem+json") == nil {
					t.Errorf("%s: response %s is not application/problem+json", where, code)
				}
			}
		}
	}
}
