package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// TestValidation is acceptance 6: bad input — unknown statuses, a shipment
// without its tracking number, oversized or malformed address fields,
// malformed ids, bad amounts, bad pages — is a 400 problem+json naming
// every field at fault, checked at the boundary before anything changes.
func TestValidation(t *testing.T) {
	t.Parallel()
	s := startService(t)
	buyer := s.user(t, "buyer", true)
	seller := s.user(t, "seller", true)
	o := s.confirmedOrder(t, buyer, seller)
	order := o.Id.String()
	delivery := deliveryOf(t, o, seller).Id.String()

	// create returns a create-order body with one change applied to its
	// generic JSON form.
	create := func(change func(m map[string]any)) string {
		req := orderRequest(buyer, line{seller: seller, unitPrice: 100, quantity: 1}, line{seller: seller, unitPrice: 200, quantity: 1})
		raw, _ := json.Marshal(req)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		change(m)
		raw, _ = json.Marshal(m)
		return string(raw)
	}
	addr := func(m map[string]any) map[string]any { return m["shipping_address"].(map[string]any) }
	line0 := func(m map[string]any) map[string]any { return m["lines"].([]any)[0].(map[string]any) }
	line1 := func(m map[string]any) map[string]any { return m["lines"].([]any)[1].(map[string]any) }
	address := func(change func(m map[string]any)) string {
		m := map[string]any{"name": "Ada", "line1": "1 rue A", "city": "Paris", "postal_code": "75001", "country": "FR"}
		change(m)
		raw, _ := json.Marshal(m)
		return string(raw)
	}
	long := func(n int) string { return strings.Repeat("é", n) } // characters, not bytes, are counted

	const (
		internal = iota
		asBuyer
		asSeller
	)
	tests := []struct {
		name, method, path string
		caller             int
		headers            map[string]string
		body               string
		fields             []string
	}{
		// Unknown statuses.
		{"transition to an unknown status", "POST", "/internal/orders/" + order + "/transitions", internal, nil, `{"to":"shipped"}`, []string{"to"}},
		{"transition without status", "POST", "/internal/orders/" + order + "/transitions", internal, nil, `{}`, []string{"to"}},
		{"delivery to an unknown status", "POST", "/v1/sales/deliveries/" + delivery + "/status", asSeller, nil, `{"status":"lost"}`, []string{"status"}},
		{"orders filtered by an unknown status", "GET", "/v1/orders?status=lost", asBuyer, nil, "", []string{"status"}},
		{"sales filtered by an unknown status", "GET", "/v1/sales?delivery_status=confirmed", asSeller, nil, "", []string{"delivery_status"}},
		{"recovery by an unknown status", "GET", "/internal/orders?status=stuck", internal, nil, "", []string{"status"}},
		// Shipments.
		{"shipped without tracking number", "POST", "/v1/sales/deliveries/" + delivery + "/status", asSeller, nil, `{"status":"shipped","carrier":"UPS"}`, []string{"tracking_number"}},
		{"shipped without anything", "POST", "/v1/sales/deliveries/" + delivery + "/status", asSeller, nil, `{"status":"shipped"}`, []string{"carrier", "tracking_number"}},
		{"shipped with blank tracking number", "POST", "/v1/sales/deliveries/" + delivery + "/status", asSeller, nil, `{"status":"shipped","carrier":"UPS","tracking_number":"  "}`, []string{"tracking_number"}},
		{"shipped with oversized tracking number", "POST", "/v1/sales/deliveries/" + delivery + "/status", asSeller, nil, fmt.Sprintf(`{"status":"shipped","carrier":"UPS","tracking_number":%q}`, long(101)), []string{"tracking_number"}},
		{"tracking number with another status", "POST", "/v1/sales/deliveries/" + delivery + "/status", asSeller, nil, `{"status":"delivered","tracking_number":"X1"}`, []string{"tracking_number"}},
		// Address book.
		{"address name oversized", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["name"] = long(101) }), []string{"name"}},
		{"address lines oversized", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["line1"], m["line2"] = long(201), long(201) }), []string{"line1", "line2"}},
		{"address city oversized", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["city"] = long(101) }), []string{"city"}},
		{"address without postal code", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { delete(m, "postal_code") }), []string{"postal_code"}},
		{"address postal code oversized", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["postal_code"] = long(21) }), []string{"postal_code"}},
		{"address alpha-3 country", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["country"] = "FRA" }), []string{"country"}},
		{"address unknown country", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["country"] = "ZZ" }), []string{"country"}},
		{"address non-ISO country", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["country"] = "UK" }), []string{"country"}},
		{"address control characters", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["line1"] = "1 rue\u0000A" }), []string{"line1"}},
		{"address empty", "POST", "/v1/addresses", asBuyer, nil, `{}`, []string{"city", "country", "line1", "name", "postal_code"}},
		{"address unknown field", "POST", "/v1/addresses", asBuyer, nil, address(func(m map[string]any) { m["state"] = "IDF" }), []string{"state"}},
		{"shipping address oversized", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k1"},
			create(func(m map[string]any) { addr(m)["name"], addr(m)["country"] = long(101), "" }), []string{"shipping_address.country", "shipping_address.name"}},
		// Malformed ids.
		{"order id in a path", "GET", "/v1/orders/42", asBuyer, nil, "", []string{"id"}},
		{"order id in an internal path", "POST", "/internal/orders/not-a-uuid/transitions", internal, nil, `{"to":"paid"}`, []string{"id"}},
		{"tracking id", "GET", "/v1/orders/xyz/tracking", asBuyer, nil, "", []string{"id"}},
		{"delivery id", "POST", "/v1/sales/deliveries/123/status", asSeller, nil, `{"status":"in_transit"}`, []string{"id"}},
		{"address id", "DELETE", "/v1/addresses/abc", asBuyer, nil, "", []string{"id"}},
		{"ids in a body", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k2"},
			create(func(m map[string]any) {
				m["buyer_id"], line0(m)["product_id"], line1(m)["seller_id"] = "abc", "1234", ""
			}),
			[]string{"buyer_id", "lines[0].product_id", "lines[1].seller_id"}},
		{"id of the wrong type", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k3"},
			create(func(m map[string]any) { m["buyer_id"] = 42 }), []string{"buyer_id"}},
		// Orders.
		{"no idempotency key", "POST", "/internal/orders", internal, nil, create(func(map[string]any) {}), []string{"Idempotency-Key"}},
		{"oversized idempotency key", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": strings.Repeat("k", 201)}, create(func(map[string]any) {}), []string{"Idempotency-Key"}},
		{"no lines", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k4"}, create(func(m map[string]any) { m["lines"] = []any{} }), []string{"lines"}},
		{"bad line amounts", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k5"},
			create(func(m map[string]any) { line0(m)["quantity"], line1(m)["unit_price"] = 0, -1 }), []string{"lines[0].quantity", "lines[1].unit_price"}},
		{"float price", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k6"},
			create(func(m map[string]any) { line0(m)["unit_price"] = 19.99 }), []string{"lines.unit_price"}},
		{"mixed currencies", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k7"},
			create(func(m map[string]any) { line1(m)["currency"] = "USD" }), []string{"lines[1].currency"}},
		{"unknown currency", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k8"},
			create(func(m map[string]any) { line0(m)["currency"], line1(m)["currency"] = "ABC", "ABC" }), []string{"lines[0].currency", "lines[1].currency"}},
		{"lowercase currency", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k9"},
			create(func(m map[string]any) { line0(m)["currency"], line1(m)["currency"] = "eur", "eur" }), []string{"lines[0].currency", "lines[1].currency"}},
		{"same product twice", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k10"},
			create(func(m map[string]any) { line1(m)["product_id"] = line0(m)["product_id"] }), []string{"lines[1].product_id"}},
		{"bad emails", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k11"},
			create(func(m map[string]any) { m["buyer_email"], line0(m)["seller_email"] = "nobody", "x@localhost" }), []string{"buyer_email", "lines[0].seller_email"}},
		{"expected total negative", "POST", "/internal/orders", internal, map[string]string{"Idempotency-Key": "k12"},
			create(func(m map[string]any) { m["expected_total"] = map[string]any{"amount": -5, "currency": "EUR"} }), []string{"expected_total.amount"}},
		{"reason oversized", "POST", "/internal/orders/" + order + "/transitions", internal, nil, fmt.Sprintf(`{"to":"refunded","reason":%q}`, long(501)), []string{"reason"}},
		{"cancel reason oversized", "POST", "/v1/orders/" + order + "/cancel", asBuyer, nil, fmt.Sprintf(`{"reason":%q}`, long(501)), []string{"reason"}},
		// Pages.
		{"limit 0", "GET", "/v1/orders?limit=0", asBuyer, nil, "", []string{"limit"}},
		{"limit 101", "GET", "/v1/sales?limit=101", asSeller, nil, "", []string{"limit"}},
		{"limit not a number", "GET", "/internal/orders?limit=ten", internal, nil, "", []string{"limit"}},
		{"bad page token", "GET", "/v1/orders?page_token=zzz", asBuyer, nil, "", []string{"page_token"}},
		{"older_than not a duration", "GET", "/internal/orders?older_than=soon", internal, nil, "", []string{"older_than"}},
		{"older_than negative", "GET", "/internal/orders?older_than=-5s", internal, nil, "", []string{"older_than"}},
		// The checkout's lookup by key.
		{"by key without buyer", "GET", "/internal/orders/by-key?idempotency_key=k1", internal, nil, "", []string{"buyer_id"}},
		{"by key with a malformed buyer", "GET", "/internal/orders/by-key?buyer_id=42&idempotency_key=k1", internal, nil, "", []string{"buyer_id"}},
		{"by key without key", "GET", "/internal/orders/by-key?buyer_id=" + buyer.ID.String(), internal, nil, "", []string{"idempotency_key"}},
		{"by key with an empty key", "GET", "/internal/orders/by-key?buyer_id=" + buyer.ID.String() + "&idempotency_key=", internal, nil, "", []string{"idempotency_key"}},
		{"by key with an oversized key", "GET", "/internal/orders/by-key?buyer_id=" + buyer.ID.String() + "&idempotency_key=" + strings.Repeat("k", 201), internal, nil, "", []string{"idempotency_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := request{Header: tt.headers}
			switch tt.caller {
			case asBuyer:
				req.Token = buyer.Token
			case asSeller:
				req.Token = seller.Token
			}
			if tt.body != "" {
				req.Body = tt.body
			}
			r := s.do(t, tt.method, tt.path, req).Want(t, http.StatusBadRequest)
			p := r.Problem(t)
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field)
				if e.Detail == "" {
					t.Errorf("field %s has no detail", e.Field)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields in error (-want +got):\n%s\n%s", diff, r.Body)
			}
			if !strings.HasSuffix(p.Type, "/invalid-request") {
				t.Errorf("got problem type %q, want invalid-request", p.Type)
			}
		})
	}

	// Nothing was created or changed by the refusals.
	if n := s.count(t, `SELECT count(*) FROM orders`); n != 1 {
		t.Errorf("got %d orders, want only the set-up one", n)
	}
	if n := s.count(t, `SELECT count(*) FROM addresses`); n != 0 {
		t.Errorf("got %d addresses, want none", n)
	}
	var after = s.do(t, "GET", "/internal/orders/"+order, request{}).Want(t, http.StatusOK).order(t)
	if after.Status != "confirmed" || after.Deliveries[0].Status != "preparing" {
		t.Errorf("got order %s with delivery %s, want confirmed and preparing", after.Status, after.Deliveries[0].Status)
	}
	// Other refusals of the boundary.
	s.do(t, "POST", "/internal/orders", request{Header: map[string]string{"Idempotency-Key": "k"}}).Want(t, http.StatusUnsupportedMediaType).Problem(t)
	s.do(t, "PUT", "/internal/orders/"+uuid.NewString(), request{}).Want(t, http.StatusMethodNotAllowed).Problem(t)
	s.do(t, "GET", "/v1/nothing", request{}).Want(t, http.StatusNotFound).Problem(t)
}
