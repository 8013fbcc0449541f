package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The reference: one process, one database, the same product page shape
// and the same checkout writes (stock decrement, order with its line,
// payment row) in one transaction. Buyers are named by a header, not a
// token: the reference measures the work, not the identity.
const refSchema = `
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE products (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), seller_id uuid NOT NULL, name text NOT NULL,
  description text NOT NULL, price_amount bigint NOT NULL, currency text NOT NULL,
  on_hand int NOT NULL CHECK (on_hand >= 0), status text NOT NULL DEFAULT 'active',
  version int NOT NULL DEFAULT 1, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX products_name ON products USING btree (lower(name) text_pattern_ops);
CREATE TABLE cart_lines (buyer text NOT NULL, product_id uuid NOT NULL REFERENCES products,
  quantity int NOT NULL, PRIMARY KEY (buyer, product_id));
CREATE TABLE orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), buyer text NOT NULL,
  idempotency_key text NOT NULL UNIQUE, status text NOT NULL, total bigint NOT NULL,
  currency text NOT NULL, shipping jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE order_lines (order_id uuid NOT NULL REFERENCES orders, product_id uuid NOT NULL,
  seller_id uuid NOT NULL, name text NOT NULL, unit_price bigint NOT NULL, quantity int NOT NULL);
CREATE TABLE payments (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), order_id uuid NOT NULL UNIQUE REFERENCES orders,
  amount bigint NOT NULL, currency text NOT NULL, status text NOT NULL, card_brand text NOT NULL,
  card_last4 text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
`

type money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

type refProduct struct {
	ID          string    `json:"id"`
	SellerID    string    `json:"seller_id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       money     `json:"price"`
	Available   int       `json:"available"`
	Status      string    `json:"status"`
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type reference struct {
	db  *pgxpool.Pool
	srv *http.Server
	url string
	ids []string
}

const productCols = `id::text, seller_id::text, name, description, price_amount, currency, on_hand, status, version, created_at, updated_at`

func scanProduct(row pgx.Row) (refProduct, error) {
	var p refProduct
	err := row.Scan(&p.ID, &p.SellerID, &p.Name, &p.Description, &p.Price.Amount, &p.Price.Currency,
		&p.Available, &p.Status, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, err
}

// startReference creates the schema and n products, and serves on a free
// loopback port.
func startReference(dbURL string, names []string, onHand int) (*reference, error) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 32
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(ctx, refSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("reference schema: %w", err)
	}
	r := &reference{db: db}
	seller := "00000000-0000-4000-8000-000000000001"
	for _, n := range names {
		var id string
		if err := db.QueryRow(ctx, `INSERT INTO products (seller_id, name, description, price_amount, currency, on_hand)
			VALUES ($1, $2, 'A product of the benchmark.', 1850, 'EUR', $3) RETURNING id::text`, seller, n, onHand).Scan(&id); err != nil {
			db.Close()
			return nil, err
		}
		r.ids = append(r.ids, id)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/products", r.list)
	mux.HandleFunc("GET /v1/products/{id}", r.get)
	mux.HandleFunc("PUT /v1/cart/lines/{id}", r.cartLine)
	mux.HandleFunc("POST /v1/checkout", r.checkout)
	mux.HandleFunc("GET /ceiling", ceiling)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, err
	}
	r.url = "http://" + l.Addr().String()
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *reference) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	r.db.Close()
}

var ceilingBody = []byte(`{"items":[],"status":"ok"}`)

// ceiling is the HTTP ceiling: a constant JSON answer, no database.
func ceiling(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ceilingBody)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "title": http.StatusText(status), "detail": err.Error()})
}

// list is a keyset page of active products, filtered by a name prefix or
// substring when q is set, as the shop's catalogue.
func (r *reference) list(w http.ResponseWriter, req *http.Request) {
	limit, _ := strconv.Atoi(req.URL.Query().Get("limit"))
	if limit < 1 || limit > 100 {
		limit = 20
	}
	after := req.URL.Query().Get("page_token")
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	q := req.URL.Query().Get("q")
	rows, err := r.db.Query(req.Context(), `SELECT `+productCols+` FROM products
		WHERE status = 'active' AND id > $1::uuid AND ($2 = '' OR name ILIKE '%' || $2 || '%')
		ORDER BY id LIMIT $3`, after, q, limit+1)
	if err != nil {
		problem(w, http.StatusInternalServerError, err)
		return
	}
	defer rows.Close()
	page := struct {
		Items []refProduct `json:"items"`
		Next  string       `json:"next_page_token,omitempty"`
	}{Items: []refProduct{}}
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			problem(w, http.StatusInternalServerError, err)
			return
		}
		page.Items = append(page.Items, p)
	}
	if err := rows.Err(); err != nil {
		problem(w, http.StatusInternalServerError, err)
		return
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = page.Items[limit-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

func (r *reference) get(w http.ResponseWriter, req *http.Request) {
	p, err := scanProduct(r.db.QueryRow(req.Context(), `SELECT `+productCols+` FROM products WHERE id = $1::uuid`, req.PathValue("id")))
	if errors.Is(err, pgx.ErrNoRows) {
		problem(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		problem(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(p.Version)))
	writeJSON(w, http.StatusOK, p)
}

func (r *reference) cartLine(w http.ResponseWriter, req *http.Request) {
	var in struct {
		Quantity int `json:"quantity"`
	}
	if err := json.NewDecoder(req.Body).Decode(&in); err != nil || in.Quantity < 1 {
		problem(w, http.StatusBadRequest, errors.New("quantity"))
		return
	}
	buyer := req.Header.Get("X-Buyer")
	if _, err := r.db.Exec(req.Context(), `INSERT INTO cart_lines (buyer, product_id, quantity) VALUES ($1, $2::uuid, $3)
		ON CONFLICT (buyer, product_id) DO UPDATE SET quantity = EXCLUDED.quantity`, buyer, req.PathValue("id"), in.Quantity); err != nil {
		problem(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": []any{map[string]any{"product_id": req.PathValue("id"), "quantity": in.Quantity}}})
}

// checkout does the shop's writes in one transaction: the cart read,
// stock decremented only where it suffices, the order and its lines, the
// payment row, the cart cleared.
func (r *reference) checkout(w http.ResponseWriter, req *http.Request) {
	var in struct {
		Shipping map[string]string `json:"shipping_address"`
		Card     struct {
			Number string `json:"number"`
		} `json:"card"`
	}
	if err := json.NewDecoder(req.Body).Decode(&in); err != nil || len(in.Card.Number) < 4 {
		problem(w, http.StatusBadRequest, errors.New("body"))
		return
	}
	buyer, key := req.Header.Get("X-Buyer"), req.Header.Get("Idempotency-Key")
	ctx := req.Context()
	var orderID string
	var total int64
	err := pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT c.product_id::text, c.quantity, p.seller_id::text, p.name, p.price_amount
			FROM cart_lines c JOIN products p ON p.id = c.product_id WHERE c.buyer = $1
			ORDER BY c.product_id`, buyer) // one lock order: concurrent checkouts never deadlock
		if err != nil {
			return err
		}
		type line struct {
			product, seller, name string
			qty                   int
			price                 int64
		}
		var lines []line
		for rows.Next() {
			var l line
			if err := rows.Scan(&l.product, &l.qty, &l.seller, &l.name, &l.price); err != nil {
				return err
			}
			lines = append(lines, l)
			total += l.price * int64(l.qty)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(lines) == 0 {
			return errEmptyCart
		}
		shipping, _ := json.Marshal(in.Shipping)
		if err := tx.QueryRow(ctx, `INSERT INTO orders (buyer, idempotency_key, status, total, currency, shipping)
			VALUES ($1, $2, 'confirmed', $3, 'EUR', $4) RETURNING id::text`, buyer, key, total, shipping).Scan(&orderID); err != nil {
			return err
		}
		for _, l := range lines {
			tag, err := tx.Exec(ctx, `UPDATE products SET on_hand = on_hand - $2 WHERE id = $1::uuid AND on_hand >= $2`, l.product, l.qty)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return errNoStock
			}
			if _, err := tx.Exec(ctx, `INSERT INTO order_lines (order_id, product_id, seller_id, name, unit_price, quantity)
				VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6)`, orderID, l.product, l.seller, l.name, l.price, l.qty); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO payments (order_id, amount, currency, status, card_brand, card_last4)
			VALUES ($1::uuid, $2, 'EUR', 'succeeded', 'visa', $3)`, orderID, total, in.Card.Number[len(in.Card.Number)-4:]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM cart_lines WHERE buyer = $1`, buyer)
		return err
	})
	switch {
	case errors.Is(err, errEmptyCart), errors.Is(err, errNoStock):
		problem(w, http.StatusConflict, err)
	case err != nil:
		problem(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusCreated, map[string]any{"id": orderID, "status": "confirmed",
			"total": money{total, "EUR"}, "payment": map[string]string{"status": "succeeded"}})
	}
}

var (
	errEmptyCart = errors.New("cart is empty")
	errNoStock   = errors.New("not enough stock")
)
