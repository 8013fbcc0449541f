package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// The SQL of the inventory domain. Every statement that moves stock is a
// conditional UPDATE whose WHERE clause states the rule (enough available,
// still held, …): PostgreSQL re-checks it on the latest row version after
// waiting for a concurrent writer, so the rule holds however many requests
// race. Durations travel as seconds and every deadline is computed with the
// database's now(), so instances with skewed clocks agree.

// constraints are the words a client reads when a write breaks the schema.
// The HTTP boundary checks every value first (CheckName and friends), so
// these answer a caller that skipped it, or a bug the log explains.
var constraints = pgdb.Constraints{
	"cart_lines_quantity_check": apierr.E(apierr.Conflict,
		fmt.Errorf("a cart line holds 1 to %d units of a product", MaxCartQuantity)),
	"reservation_lines_quantity_check": apierr.E(apierr.Conflict,
		fmt.Errorf("a reservation line holds 1 to %d units of a product", MaxReserveQuantity)),
	"cart_lines_product_id_fkey":        errNoSuchProduct,
	"reservation_lines_product_id_fkey": errNoSuchProduct,
	"":                                  apierr.E(apierr.Conflict, errors.New("the change breaks a rule of the inventory data; nothing was saved")),
}

var errNoSuchProduct = apierr.E(apierr.Conflict, errors.New("a product of the request does not exist"))

const productColumns = `p.id, p.seller_id, p.name, p.description, p.price_amount, p.currency,
	p.on_hand, p.reserved, p.status, p.version, p.created_at, p.updated_at, p.archived_at`

func scanProduct(row pgx.Row, extra ...any) (Product, error) {
	var p Product
	dest := append([]any{&p.ID, &p.SellerID, &p.Name, &p.Description, &p.Price.Amount, &p.Price.Currency,
		&p.OnHand, &p.Reserved, &p.Status, &p.Version, &p.CreatedAt, &p.UpdatedAt, &p.ArchivedAt}, extra...)
	err := row.Scan(dest...)
	return p, err
}

func collectProducts(rows pgx.Rows, err error) ([]Product, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Product, error) { return scanProduct(row) })
}

// Products.
const (
	insertProductSQL = `
INSERT INTO products AS p (id, seller_id, name, description, price_amount, currency, on_hand)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING ` + productColumns

	selectProductSQL      = `SELECT ` + productColumns + ` FROM products p WHERE p.id = $1`
	selectProductsByIDSQL = `SELECT ` + productColumns + ` FROM products p WHERE p.id = ANY($1)`

	// A seller's own products, archived included, newest first (keyset on
	// created_at, id; the seller index serves filter and order).
	selectSellerProductsSQL = `
SELECT ` + productColumns + ` FROM products p
WHERE p.seller_id = $1
	AND ($2::timestamptz IS NULL OR (p.created_at, p.id) < ($2, $3::uuid))
ORDER BY p.created_at DESC, p.id DESC
LIMIT $4`

	// The edit applies only to the seller's own active product at the
	// version the seller last saw ($7 NULL: any version), and moves the
	// version on: two edits from the same ETag cannot both apply.
	updateProductSQL = `
UPDATE products AS p SET
	name = coalesce($3, p.name),
	description = coalesce($4, p.description),
	price_amount = coalesce($5, p.price_amount),
	currency = coalesce($6, p.currency),
	version = p.version + 1,
	updated_at = now()
WHERE p.id = $1 AND p.seller_id = $2 AND p.status = 'active'
	AND ($7::integer IS NULL OR p.version = $7)
RETURNING ` + productColumns

	archiveProductSQL = `
UPDATE products AS p SET status = 'archived', archived_at = now(), version = p.version + 1, updated_at = now()
WHERE p.id = $1 AND p.seller_id = $2 AND p.status = 'active'
RETURNING ` + productColumns

	// Stock may not fall below what is promised to orders: the condition is
	// in the UPDATE, so a reservation landing meanwhile is accounted for.
	setStockSQL = `
UPDATE products AS p SET on_hand = $3, updated_at = now()
WHERE p.id = $1 AND p.seller_id = $2 AND p.reserved <= $3
RETURNING ` + productColumns

	adjustStockSQL = `
UPDATE products AS p SET on_hand = p.on_hand + $3, updated_at = now()
WHERE p.id = $1 AND p.seller_id = $2
	AND p.on_hand + $3 >= p.reserved AND p.on_hand + $3 <= ` + maxOnHandSQL + `
RETURNING ` + productColumns

	maxOnHandSQL = "1000000000"
)

func getProduct(ctx context.Context, q pgdb.Querier, id uuid.UUID) (Product, error) {
	p, err := scanProduct(q.QueryRow(ctx, selectProductSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, errProductNotFound(id)
	}
	if err != nil {
		return Product{}, fmt.Errorf("get product %s: %w", id, err)
	}
	return p, nil
}

// getOwnProduct is getProduct for its seller: another seller's product is
// NotFound, exactly as a missing one, so ids cannot be probed.
func getOwnProduct(ctx context.Context, q pgdb.Querier, sellerID, id uuid.UUID) (Product, error) {
	p, err := getProduct(ctx, q, id)
	if err == nil && p.SellerID != sellerID {
		return Product{}, errProductNotFound(id)
	}
	return p, err
}

// updateOwnProduct runs one of the conditional product UPDATEs above and
// reports false when its condition matched no row.
func updateOwnProduct(ctx context.Context, q pgdb.Querier, sql string, args ...any) (Product, bool, error) {
	p, err := scanProduct(q.QueryRow(ctx, sql, args...))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Product{}, false, nil
	case err != nil:
		return Product{}, false, constraints.Map(err)
	}
	return p, true, nil
}

// Catalogue search. The statement is assembled from constant fragments
// with one placeholder per filter actually used, so PostgreSQL plans each
// shape of query on its own (a catch-all "$1 IS NULL OR …" statement gets a
// generic plan that cannot use the indexes).

// searchSQL returns the statement and arguments of q. Rows carry the rank
// after the product columns (0 when there is no text to rank by).
func searchSQL(q Query) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	from, rank := "products p", "0::real"
	where := []string{"p.status = 'active'"}
	if q.Text != "" {
		from += ", websearch_to_tsquery('english', " + arg(q.Text) + ") AS query"
		rank = "ts_rank(p.search, query)"
		where = append(where, "p.search @@ query")
	}
	if q.SellerID != nil {
		where = append(where, "p.seller_id = "+arg(*q.SellerID))
	}
	if q.Currency != "" {
		where = append(where, "p.currency = "+arg(q.Currency))
	}
	if q.MinPrice != nil {
		where = append(where, "p.price_amount >= "+arg(*q.MinPrice))
	}
	if q.MaxPrice != nil {
		where = append(where, "p.price_amount <= "+arg(*q.MaxPrice))
	}
	if q.InStock {
		where = append(where, "p.on_hand > p.reserved")
	}
	var order string
	after := q.After
	switch q.Sort {
	case SortRelevance:
		order = "rank DESC, p.id DESC"
		if after != nil {
			where = append(where, "("+rank+", p.id) < ("+arg(after.Rank)+"::real, "+arg(after.ID)+"::uuid)")
		}
	case SortPriceAsc:
		order = "p.price_amount, p.id"
		if after != nil {
			where = append(where, "(p.price_amount, p.id) > ("+arg(after.Price)+"::bigint, "+arg(after.ID)+"::uuid)")
		}
	case SortPriceDesc:
		order = "p.price_amount DESC, p.id DESC"
		if after != nil {
			where = append(where, "(p.price_amount, p.id) < ("+arg(after.Price)+"::bigint, "+arg(after.ID)+"::uuid)")
		}
	default: // SortNewest
		order = "p.created_at DESC, p.id DESC"
		if after != nil {
			where = append(where, "(p.created_at, p.id) < ("+arg(after.CreatedAt)+"::timestamptz, "+arg(after.ID)+"::uuid)")
		}
	}
	sql := "SELECT " + productColumns + ", " + rank + " AS rank FROM " + from +
		" WHERE " + strings.Join(where, " AND ") +
		" ORDER BY " + order + " LIMIT " + arg(q.Limit+1)
	return sql, args
}

// rankedProduct is a search result with the rank it was ordered by.
type rankedProduct struct {
	Product
	rank float32
}

func searchProducts(ctx context.Context, q pgdb.Querier, query Query) ([]rankedProduct, error) {
	sql, args := searchSQL(query)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("search products: %w", err)
	}
	res, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (rankedProduct, error) {
		var rp rankedProduct
		p, err := scanProduct(row, &rp.rank)
		rp.Product = p
		return rp, err
	})
	if err != nil {
		return nil, fmt.Errorf("search products: %w", err)
	}
	return res, nil
}

// Carts.
const (
	selectCartSQL = `
SELECT l.product_id, p.seller_id, p.name, l.quantity, p.price_amount, p.currency,
	p.on_hand - p.reserved, p.status, l.added_at
FROM cart_lines l JOIN products p ON p.id = l.product_id
WHERE l.user_id = $1
ORDER BY l.added_at, l.product_id`

	selectProductStatusSQL = `SELECT status FROM products WHERE id = $1`

	// Creating or touching the user's carts row locks it until the
	// transaction ends: changes to one cart are serialised, which is what
	// makes the line limit below hold under concurrent requests.
	lockCartSQL = `
INSERT INTO carts (user_id) VALUES ($1)
ON CONFLICT (user_id) DO UPDATE SET updated_at = now()`

	// Inserts or replaces a line, unless it is a new line and the cart is
	// full (no row is then affected).
	upsertCartLineSQL = `
INSERT INTO cart_lines (user_id, product_id, quantity)
SELECT $1, $2, $3
WHERE EXISTS (SELECT 1 FROM cart_lines WHERE user_id = $1 AND product_id = $2)
	OR (SELECT count(*) FROM cart_lines WHERE user_id = $1) < $4
ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = excluded.quantity, updated_at = now()`

	// The mark of an order whose lines left the cart: inserted once, so
	// only the first request for an order removes anything.
	insertCartCheckoutSQL = `
INSERT INTO cart_checkouts (order_id, user_id) VALUES ($1, $2)
ON CONFLICT (order_id) DO NOTHING`

	// A bought line leaves the cart: lowered by the quantity bought, or
	// deleted when nothing would be left (the buyer added nothing since).
	lowerCartLineSQL = `
UPDATE cart_lines SET quantity = quantity - $3, updated_at = now()
WHERE user_id = $1 AND product_id = $2 AND quantity > $3`
	deleteBoughtLineSQL = `DELETE FROM cart_lines WHERE user_id = $1 AND product_id = $2 AND quantity <= $3`

	deleteCartLineSQL = `DELETE FROM cart_lines WHERE user_id = $1 AND product_id = $2`
	clearCartSQL      = `DELETE FROM cart_lines WHERE user_id = $1`
)

func getCart(ctx context.Context, q pgdb.Querier, userID uuid.UUID) (Cart, error) {
	rows, err := q.Query(ctx, selectCartSQL, userID)
	if err != nil {
		return Cart{}, fmt.Errorf("get cart: %w", err)
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CartLine, error) {
		var l CartLine
		err := row.Scan(&l.ProductID, &l.SellerID, &l.Name, &l.Quantity, &l.UnitPrice.Amount, &l.UnitPrice.Currency,
			&l.Available, &l.Status, &l.AddedAt)
		return l, err
	})
	if err != nil {
		return Cart{}, fmt.Errorf("get cart: %w", err)
	}
	return Cart{Lines: lines}, nil
}

// Reservations.
const (
	reservationColumns = `order_id, status, expires_at, created_at, settled_at, restock_note`

	// ON CONFLICT DO NOTHING: a second request for the same order inserts
	// nothing and gets no row back, and the transaction goes on to read the
	// first one's reservation. A concurrent request for the same order
	// waits here until the first commits or rolls back.
	insertReservationSQL = `
INSERT INTO reservations (order_id, status, expires_at)
VALUES ($1, 'held', now() + make_interval(secs => $2))
ON CONFLICT (order_id) DO NOTHING
RETURNING ` + reservationColumns

	insertReservationLinesSQL = `
INSERT INTO reservation_lines (order_id, product_id, quantity)
SELECT $1, l.product_id, l.quantity FROM unnest($2::uuid[], $3::integer[]) AS l (product_id, quantity)`

	selectReservationSQL      = `SELECT ` + reservationColumns + ` FROM reservations WHERE order_id = $1`
	selectReservationLinesSQL = `SELECT product_id, quantity FROM reservation_lines WHERE order_id = $1 ORDER BY product_id`

	selectReservationsOfSQL = `SELECT ` + reservationColumns + ` FROM reservations WHERE order_id = ANY($1)`
	selectLinesOfManySQL    = `
SELECT order_id, product_id, quantity FROM reservation_lines WHERE order_id = ANY($1) ORDER BY order_id, product_id`

	// The walk of the reservations created since a time, oldest first,
	// served by the index on (created_at, order_id): the first page, then
	// the pages after a cursor (two statements, so that each keeps a plan
	// that uses the index).
	selectReservationsSinceSQL = `SELECT ` + reservationColumns + ` FROM reservations
WHERE created_at >= $1
ORDER BY created_at, order_id
LIMIT $2`
	selectReservationsSinceAfterSQL = `SELECT ` + reservationColumns + ` FROM reservations
WHERE created_at >= $1 AND (created_at, order_id) > ($2, $3)
ORDER BY created_at, order_id
LIMIT $4`

	// The one statement that takes stock: it applies only when the product
	// is on sale and has the units available at the moment the row is
	// written, so concurrent reservations can never take more than there
	// is. It is never preceded by a read that decides for it.
	reserveStockSQL = `
UPDATE products SET reserved = reserved + $2
WHERE id = $1 AND status = 'active' AND on_hand - reserved >= $2`

	// Why lines could not be reserved, for the error message only (the
	// decision was the UPDATE's).
	selectStockSQL = `SELECT id, status, on_hand - reserved FROM products WHERE id = ANY($1)`

	// The transitions out of held. Each is guarded by status = 'held', so
	// of two racing transitions the second finds the row changed (PostgreSQL
	// re-evaluates the WHERE clause after waiting for the first) and applies
	// to nothing: one winner, and the stock moves once. Commit and expiry
	// split time at expires_at: commit needs expires_at > now(), expiry
	// expires_at <= now().
	commitReservationSQL = `
UPDATE reservations SET status = 'committed', settled_at = now()
WHERE order_id = $1 AND status = 'held' AND expires_at > now()
RETURNING ` + reservationColumns

	releaseReservationSQL = `
UPDATE reservations SET status = 'released', settled_at = now()
WHERE order_id = $1 AND status = 'held'
RETURNING ` + reservationColumns

	expireReservationSQL = `
UPDATE reservations SET status = 'expired', settled_at = now()
WHERE order_id = $1 AND status = 'held' AND expires_at <= now()
RETURNING ` + reservationColumns

	// The one transition out of committed, guarded like the others: of two
	// racing restocks the second applies to nothing, and the units come
	// back once.
	restockReservationSQL = `
UPDATE reservations SET status = 'restocked'
WHERE order_id = $1 AND status = 'committed'
RETURNING ` + reservationColumns

	// The sweeper's claim: a batch of due reservations, skipping those
	// another sweeper (or a commit or release) holds, so any number of
	// instances sweep side by side without waiting or double counting.
	expireDueSQL = `
WITH due AS (
	SELECT order_id FROM reservations
	WHERE status = 'held' AND expires_at <= now()
	ORDER BY expires_at
	LIMIT $1
	FOR UPDATE SKIP LOCKED
)
UPDATE reservations r SET status = 'expired', settled_at = now()
FROM due WHERE r.order_id = due.order_id AND r.status = 'held'
RETURNING r.order_id`

	// What the expired reservations held, per product, in product id order.
	sumReservationLinesSQL = `
SELECT product_id, sum(quantity)::integer FROM reservation_lines
WHERE order_id = ANY($1)
GROUP BY product_id ORDER BY product_id`

	releaseStockSQL = `UPDATE products SET reserved = reserved - $2 WHERE id = $1`
	commitStockSQL  = `UPDATE products SET on_hand = on_hand - $2, reserved = reserved - $2 WHERE id = $1`
	restockStockSQL = `UPDATE products SET on_hand = on_hand + $2 WHERE id = $1`

	// A restock reads the product's on_hand under its row lock first, so
	// that it adds only what fits under the ceiling (the CHECK on
	// products.on_hand) and knows exactly what it left out.
	lockOnHandSQL        = `SELECT on_hand FROM products WHERE id = $1 FOR UPDATE`
	setRestockNoteSQL    = `UPDATE reservations SET restock_note = $2 WHERE order_id = $1`
	restockCeilingOnHand = MaxOnHand
)

func scanReservation(row pgx.Row) (Reservation, error) {
	var r Reservation
	err := row.Scan(&r.OrderID, &r.Status, &r.ExpiresAt, &r.CreatedAt, &r.SettledAt, &r.RestockNote)
	return r, err
}

// transition runs one of the guarded status UPDATEs and reports whether it
// applied.
func transition(ctx context.Context, tx pgx.Tx, sql string, orderID uuid.UUID) (Reservation, bool, error) {
	r, err := scanReservation(tx.QueryRow(ctx, sql, orderID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Reservation{}, false, nil
	case err != nil:
		return Reservation{}, false, fmt.Errorf("reservation %s: %w", orderID, err)
	}
	if r.Lines, err = reservationLines(ctx, tx, orderID); err != nil {
		return Reservation{}, false, err
	}
	return r, true, nil
}

func getReservation(ctx context.Context, q pgdb.Querier, orderID uuid.UUID) (Reservation, error) {
	r, err := scanReservation(q.QueryRow(ctx, selectReservationSQL, orderID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Reservation{}, errReservationNotFound(orderID)
	}
	if err != nil {
		return Reservation{}, fmt.Errorf("get reservation %s: %w", orderID, err)
	}
	r.Lines, err = reservationLines(ctx, q, orderID)
	return r, err
}

// listReservationsOf reads the reservations of the orders, with their
// lines; orders without one are absent.
func listReservationsOf(ctx context.Context, q pgdb.Querier, orderIDs []uuid.UUID) ([]Reservation, error) {
	list, err := collectReservations(q.Query(ctx, selectReservationsOfSQL, orderIDs))
	if err != nil {
		return nil, fmt.Errorf("list reservations of orders: %w", err)
	}
	return list, withLines(ctx, q, list)
}

// listReservationsSince reads up to limit reservations created at or after
// since, oldest first, after the cursor (nil: from the start), with their
// lines.
func listReservationsSince(ctx context.Context, q pgdb.Querier, since time.Time, after *ReservationCursor, limit int) ([]Reservation, error) {
	var (
		list []Reservation
		err  error
	)
	if after == nil {
		list, err = collectReservations(q.Query(ctx, selectReservationsSinceSQL, since, limit))
	} else {
		list, err = collectReservations(q.Query(ctx, selectReservationsSinceAfterSQL, since, after.CreatedAt, after.OrderID, limit))
	}
	if err != nil {
		return nil, fmt.Errorf("list reservations since %s: %w", since.Format(time.RFC3339), err)
	}
	return list, withLines(ctx, q, list)
}

func collectReservations(rows pgx.Rows, err error) ([]Reservation, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Reservation, error) { return scanReservation(row) })
}

// withLines fills the lines of every reservation of list in one query.
func withLines(ctx context.Context, q pgdb.Querier, list []Reservation) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(list))
	at := make(map[uuid.UUID]int, len(list))
	for i := range list {
		ids[i], at[list[i].OrderID] = list[i].OrderID, i
		list[i].Lines = []Line{}
	}
	rows, err := q.Query(ctx, selectLinesOfManySQL, ids)
	if err != nil {
		return fmt.Errorf("list reservation lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var orderID uuid.UUID
		var l Line
		if err := rows.Scan(&orderID, &l.ProductID, &l.Quantity); err != nil {
			return fmt.Errorf("list reservation lines: %w", err)
		}
		r := &list[at[orderID]]
		r.Lines = append(r.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list reservation lines: %w", err)
	}
	return nil
}

func reservationLines(ctx context.Context, q pgdb.Querier, orderID uuid.UUID) ([]Line, error) {
	rows, err := q.Query(ctx, selectReservationLinesSQL, orderID)
	lines, err := collectLines(rows, err)
	if err != nil {
		return nil, fmt.Errorf("reservation %s lines: %w", orderID, err)
	}
	return lines, nil
}

func collectLines(rows pgx.Rows, err error) ([]Line, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Line, error) {
		var l Line
		err := row.Scan(&l.ProductID, &l.Quantity)
		return l, err
	})
}

// moveStock runs sql (releaseStockSQL, commitStockSQL or restockStockSQL)
// for each line, in one round trip. lines must be in product id order:
// every transaction that writes several products writes them in that
// order, so two of them can never wait for each other in a cycle (no
// deadlock).
func moveStock(ctx context.Context, tx pgx.Tx, sql string, lines []Line) error {
	if !slices.IsSortedFunc(lines, compareLines) {
		return errors.New("move stock: lines not in product id order")
	}
	var b pgx.Batch
	for _, l := range lines {
		b.Queue(sql, l.ProductID, l.Quantity)
	}
	br := tx.SendBatch(ctx, &b)
	defer br.Close()
	for _, l := range lines {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("move stock of %s: %w", l.ProductID, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("move stock of %s: product missing", l.ProductID)
		}
	}
	return br.Close()
}

// restockLines adds each line's quantity back to its product's on_hand,
// in product id order like moveStock, and returns the units that would
// have taken on_hand above its ceiling and were left out (none, usually).
func restockLines(ctx context.Context, tx pgx.Tx, lines []Line) ([]Line, error) {
	if !slices.IsSortedFunc(lines, compareLines) {
		return nil, errors.New("restock: lines not in product id order")
	}
	var left []Line
	for _, l := range lines {
		var onHand int
		if err := tx.QueryRow(ctx, lockOnHandSQL, l.ProductID).Scan(&onHand); err != nil {
			return nil, fmt.Errorf("restock %s: %w", l.ProductID, err)
		}
		add := min(l.Quantity, max(0, restockCeilingOnHand-onHand))
		if add < l.Quantity {
			left = append(left, Line{ProductID: l.ProductID, Quantity: l.Quantity - add})
		}
		if add == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, restockStockSQL, l.ProductID, add); err != nil {
			return nil, fmt.Errorf("restock %s: %w", l.ProductID, err)
		}
	}
	return left, nil
}

// takeStock runs reserveStockSQL for each line (in product id order, in one
// round trip) and returns the indexes of the lines that could not be
// reserved. Every line is tried, so that the answer lists them all; the
// caller rolls back when any failed.
func takeStock(ctx context.Context, tx pgx.Tx, lines []Line) ([]int, error) {
	var b pgx.Batch
	for _, l := range lines {
		b.Queue(reserveStockSQL, l.ProductID, l.Quantity)
	}
	br := tx.SendBatch(ctx, &b)
	defer br.Close()
	var failed []int
	for i, l := range lines {
		tag, err := br.Exec()
		if err != nil {
			return nil, fmt.Errorf("reserve %s: %w", l.ProductID, err)
		}
		if tag.RowsAffected() == 0 {
			failed = append(failed, i)
		}
	}
	return failed, br.Close()
}

// stockState is what selectStockSQL reads about a product.
type stockState struct {
	status    Status
	available int
}

func stockStates(ctx context.Context, q pgdb.Querier, ids []uuid.UUID) (map[uuid.UUID]stockState, error) {
	rows, err := q.Query(ctx, selectStockSQL, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]stockState{}
	for rows.Next() {
		var (
			id uuid.UUID
			s  stockState
		)
		if err := rows.Scan(&id, &s.status, &s.available); err != nil {
			return nil, err
		}
		out[id] = s
	}
	return out, rows.Err()
}

func compareLines(a, b Line) int { return bytes.Compare(a.ProductID[:], b.ProductID[:]) }
