package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mylittleshopping/shop/services/platform/apierr"
	"github.com/mylittleshopping/shop/services/platform/pgdb"
)

// The SQL of the orders domain. Durations travel as microseconds (the
// outbox does the same) so that PostgreSQL's clock measures every age.

const orderColumns = `o.id, o.buyer_id, o.buyer_email, o.status, o.status_reason, o.currency, o.total_amount,
	o.ship_name, o.ship_line1, o.ship_line2, o.ship_city, o.ship_postal_code, o.ship_country,
	o.created_at, o.updated_at, o.status_changed_at, o.request_fingerprint,
	o.flagged_at, o.flag_reason, o.flag_hold`

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	a := &o.Address
	err := row.Scan(&o.ID, &o.BuyerID, &o.BuyerEmail, &o.Status, &o.StatusReason, &o.Currency, &o.Total,
		&a.Name, &a.Line1, &a.Line2, &a.City, &a.PostalCode, &a.Country,
		&o.CreatedAt, &o.UpdatedAt, &o.StatusChangedAt, &o.fingerprint,
		&o.Attention.FlaggedAt, &o.Attention.Reason, &o.Attention.Hold)
	return o, err
}

// constraints are the words a client reads when a write breaks the schema.
// The HTTP boundary checks every value first (one line per product, one
// delivery per seller follows), so these answer a caller that skipped it,
// or a bug the log explains.
var constraints = pgdb.Constraints{
	"order_lines_product_key": apierr.E(apierr.Conflict,
		errors.New("an order holds one line per product; send the product's units on one line")),
	"deliveries_order_seller_key": apierr.E(apierr.Conflict, errors.New("the order has a delivery for this seller already")),
	"":                            apierr.E(apierr.Conflict, errors.New("the change breaks a rule of the order data; nothing was saved")),
}

const (
	// A key already used inserts nothing and returns no row; the
	// transaction goes on (a unique violation would abort it). A
	// concurrent insert of the same key waits here until the first one
	// commits, so exactly one of them creates the order.
	insertOrderSQL = `
INSERT INTO orders (id, buyer_id, buyer_email, idempotency_key, request_fingerprint, status, currency, total_amount,
	ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country)
VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (buyer_id, idempotency_key) DO NOTHING
RETURNING id`

	selectOrderByKey = `SELECT ` + orderColumns + ` FROM orders o WHERE o.buyer_id = $1 AND o.idempotency_key = $2`

	// A NULL buyer reads any order (internal); a buyer reads only theirs.
	selectOrder  = `SELECT ` + orderColumns + ` FROM orders o WHERE o.id = $1 AND ($2::uuid IS NULL OR o.buyer_id = $2)`
	lockOrderSQL = selectOrder + ` FOR UPDATE`

	// The order of a seller's delivery, locked: another seller's delivery
	// finds nothing.
	lockOrderOfDeliverySQL = `
SELECT ` + orderColumns + ` FROM orders o JOIN deliveries d ON d.order_id = o.id
WHERE d.id = $1 AND d.seller_id = $2
FOR UPDATE OF o`

	// $4: the new status leaves the saga nothing to do, so a flag on the
	// order has had its answer and goes.
	updateOrderStatusSQL = `
UPDATE orders SET status = $2, status_reason = $3, status_changed_at = now(), updated_at = now(),
	flagged_at = CASE WHEN $4 THEN NULL ELSE flagged_at END,
	flag_reason = CASE WHEN $4 THEN '' ELSE flag_reason END,
	flag_hold = flag_hold AND NOT $4
WHERE id = $1`

	// A flag is set once (the first reason stays), except that a hold
	// replaces a flag without one; it reports whether it changed anything.
	flagOrderSQL = `
UPDATE orders SET flagged_at = coalesce(flagged_at, now()),
	flag_reason = CASE WHEN flagged_at IS NULL OR ($3 AND NOT flag_hold) THEN $2 ELSE flag_reason END,
	flag_hold = flag_hold OR $3, updated_at = now()
WHERE id = $1 AND (flagged_at IS NULL OR ($3 AND NOT flag_hold))`
	clearFlagSQL = `
UPDATE orders SET flagged_at = NULL, flag_reason = '', flag_hold = false, updated_at = now()
WHERE id = $1 AND flagged_at IS NOT NULL`

	// The operators' list, the oldest flag first, served by the partial
	// index on (flagged_at, id).
	selectFlaggedOrders = `
SELECT ` + orderColumns + ` FROM orders o
WHERE o.flagged_at IS NOT NULL
	AND ($1::timestamptz IS NULL OR (o.flagged_at, o.id) > ($1, $2::uuid))
ORDER BY o.flagged_at, o.id
LIMIT $3`

	insertTransitionSQL = `
INSERT INTO order_transitions (order_id, from_status, to_status, reason) VALUES ($1, NULLIF($2, ''), $3, $4)`

	selectTransitions = `
SELECT order_id, coalesce(from_status, ''), to_status, reason, at FROM order_transitions
WHERE order_id = ANY($1) ORDER BY id`

	// Keyset pagination, newest first: the index on (buyer_id, created_at
	// DESC, id DESC) serves the filter and the order. An empty status
	// selects every status.
	selectBuyerOrders = `
SELECT ` + orderColumns + ` FROM orders o
WHERE o.buyer_id = $1 AND ($2::text = '' OR o.status = $2)
	AND ($3::timestamptz IS NULL OR (o.created_at, o.id) < ($3, $4::uuid))
ORDER BY o.created_at DESC, o.id DESC
LIMIT $5`

	// The recovery loop's query, the longest-unchanged first, served by the
	// index on (status, status_changed_at, id).
	// An order on hold waits for a person, not for the loop.
	selectStuckOrders = `
SELECT ` + orderColumns + ` FROM orders o
WHERE o.status = ANY($1) AND o.status_changed_at <= now() - $2::bigint * interval '1 microsecond'
	AND o.status_changed_at >= $6 AND NOT o.flag_hold
	AND ($3::timestamptz IS NULL OR (o.status_changed_at, o.id) > ($3, $4::uuid))
ORDER BY o.status_changed_at, o.id
LIMIT $5`

	selectOrdersByIDs = `SELECT ` + orderColumns + ` FROM orders o WHERE o.id = ANY($1)`
)

func insertOrder(ctx context.Context, tx pgx.Tx, o *Order, key string) (created bool, err error) {
	a := o.Address
	var id uuid.UUID
	err = tx.QueryRow(ctx, insertOrderSQL, o.ID, o.BuyerID, o.BuyerEmail, key, o.fingerprint, o.Currency, o.Total,
		a.Name, a.Line1, a.Line2, a.City, a.PostalCode, a.Country).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("insert order: %w", constraints.Map(err))
	}
	return true, nil
}

func insertLines(ctx context.Context, tx pgx.Tx, orderID uuid.UUID, lines []Line) error {
	rows := make([][]any, len(lines))
	for i, l := range lines {
		rows[i] = []any{orderID, i + 1, l.ProductID, l.SellerID, l.SellerEmail, l.Name, l.UnitPrice, l.Quantity, l.Total}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"order_lines"},
		[]string{"order_id", "line_no", "product_id", "seller_id", "seller_email", "name", "unit_price", "quantity", "line_total"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("insert lines of order %s: %w", orderID, constraints.Map(err))
	}
	return nil
}

func insertTransition(ctx context.Context, q pgdb.Querier, id uuid.UUID, from, to Status, reason string) error {
	if _, err := q.Exec(ctx, insertTransitionSQL, id, string(from), string(to), reason); err != nil {
		return fmt.Errorf("record transition of order %s: %w", id, constraints.Map(err))
	}
	return nil
}

// getOrderByKey reads, with its details, the order buyer's checkout key
// created.
func getOrderByKey(ctx context.Context, q pgdb.Querier, buyer uuid.UUID, key string) (Order, error) {
	o, err := scanOrder(q.QueryRow(ctx, selectOrderByKey, buyer, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, apierr.Errorf(apierr.NotFound, "no order of buyer %s has the checkout key %q", buyer, key)
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order by key: %w", err)
	}
	list := []Order{o}
	if err := loadDetails(ctx, q, list); err != nil {
		return Order{}, err
	}
	return list[0], nil
}

// getOrder reads order id with its details; buyer, when set, must have
// placed it.
func getOrder(ctx context.Context, q pgdb.Querier, id uuid.UUID, buyer *uuid.UUID) (Order, error) {
	o, err := scanOrder(q.QueryRow(ctx, selectOrder, id, buyer))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, errOrderNotFound(id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	list := []Order{o}
	if err := loadDetails(ctx, q, list); err != nil {
		return Order{}, err
	}
	return list[0], nil
}

// lockOrder reads order id (without details) and locks its row until tx
// ends; buyer, when set, must have placed it.
func lockOrder(ctx context.Context, tx pgx.Tx, id uuid.UUID, buyer *uuid.UUID) (Order, error) {
	o, err := scanOrder(tx.QueryRow(ctx, lockOrderSQL, id, buyer))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, errOrderNotFound(id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("lock order %s: %w", id, err)
	}
	return o, nil
}

func updateOrderStatus(ctx context.Context, tx pgx.Tx, id uuid.UUID, to Status, reason string) error {
	if _, err := tx.Exec(ctx, updateOrderStatusSQL, id, string(to), reason, to.Settled()); err != nil {
		return fmt.Errorf("update status of order %s: %w", id, constraints.Map(err))
	}
	return nil
}

func listBuyerOrders(ctx context.Context, q pgdb.Querier, buyer uuid.UUID, status Status, after *Cursor, limit int) ([]Order, error) {
	at, id := cursorArgs(after)
	return collectOrders(q.Query(ctx, selectBuyerOrders, buyer, string(status), at, id, limit))
}

// listStuckOrders reads the orders in one of statuses whose status changed
// at or after changedSince (the zero time: ever) and not for olderThan.
func listStuckOrders(ctx context.Context, q pgdb.Querier, statuses []Status, olderThan time.Duration, changedSince time.Time, after *Cursor, limit int) ([]Order, error) {
	names := make([]string, len(statuses))
	for i, s := range statuses {
		names[i] = string(s)
	}
	at, id := cursorArgs(after)
	return collectOrders(q.Query(ctx, selectStuckOrders, names, olderThan.Microseconds(), at, id, limit, changedSince))
}

func listFlaggedOrders(ctx context.Context, q pgdb.Querier, after *Cursor, limit int) ([]Order, error) {
	at, id := cursorArgs(after)
	return collectOrders(q.Query(ctx, selectFlaggedOrders, at, id, limit))
}

// listOrdersByIDs reads the orders among ids that exist, in no order.
func listOrdersByIDs(ctx context.Context, q pgdb.Querier, ids []uuid.UUID) ([]Order, error) {
	return collectOrders(q.Query(ctx, selectOrdersByIDs, ids))
}

func cursorArgs(c *Cursor) (*time.Time, uuid.UUID) {
	if c == nil {
		return nil, uuid.Nil
	}
	return &c.At, c.ID
}

func collectOrders(rows pgx.Rows, err error) ([]Order, error) {
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Order, error) { return scanOrder(row) })
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return list, nil
}

// loadDetails fills the lines, history and deliveries of list's orders, in
// three queries whatever the length of the list.
func loadDetails(ctx context.Context, q pgdb.Querier, list []Order) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(list))
	for i, o := range list {
		ids[i] = o.ID
	}
	lines, err := listLines(ctx, q, ids, nil)
	if err != nil {
		return err
	}
	history, err := listTransitions(ctx, q, ids)
	if err != nil {
		return err
	}
	deliveries, err := listDeliveries(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range list {
		o := &list[i]
		o.Lines, o.History, o.Deliveries = lines[o.ID], history[o.ID], deliveries[o.ID]
	}
	return nil
}

const selectLines = `
SELECT order_id, product_id, seller_id, seller_email, name, unit_price, quantity, line_total
FROM order_lines
WHERE order_id = ANY($1) AND ($2::uuid IS NULL OR seller_id = $2)
ORDER BY order_id, line_no`

// listLines returns the lines of the orders by order, in their order;
// seller, when set, keeps only that seller's lines.
func listLines(ctx context.Context, q pgdb.Querier, orderIDs []uuid.UUID, seller *uuid.UUID) (map[uuid.UUID][]Line, error) {
	rows, err := q.Query(ctx, selectLines, orderIDs, seller)
	if err != nil {
		return nil, fmt.Errorf("list lines: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID][]Line{}
	for rows.Next() {
		var orderID uuid.UUID
		var l Line
		if err := rows.Scan(&orderID, &l.ProductID, &l.SellerID, &l.SellerEmail, &l.Name, &l.UnitPrice, &l.Quantity, &l.Total); err != nil {
			return nil, fmt.Errorf("list lines: %w", err)
		}
		out[orderID] = append(out[orderID], l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list lines: %w", err)
	}
	return out, nil
}

func listTransitions(ctx context.Context, q pgdb.Querier, orderIDs []uuid.UUID) (map[uuid.UUID][]Change, error) {
	rows, err := q.Query(ctx, selectTransitions, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("list transitions: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID][]Change{}
	for rows.Next() {
		var orderID uuid.UUID
		var c Change
		if err := rows.Scan(&orderID, &c.From, &c.To, &c.Reason, &c.At); err != nil {
			return nil, fmt.Errorf("list transitions: %w", err)
		}
		out[orderID] = append(out[orderID], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list transitions: %w", err)
	}
	return out, nil
}

// Deliveries.

const deliveryColumns = `d.id, d.order_id, d.seller_id, d.status, d.carrier, d.tracking_number, d.created_at, d.updated_at`

func scanDelivery(row pgx.Row, extra ...any) (Delivery, error) {
	var d Delivery
	err := row.Scan(append([]any{&d.ID, &d.OrderID, &d.SellerID, &d.Status, &d.Carrier, &d.TrackingNumber, &d.CreatedAt, &d.UpdatedAt}, extra...)...)
	return d, err
}

const (
	// A delivery starts preparing, and its history with it, in one
	// statement.
	insertDeliverySQL = `
WITH d AS (
	INSERT INTO deliveries (id, order_id, seller_id, status) VALUES ($1, $2, $3, 'preparing')
	RETURNING id
)
INSERT INTO delivery_events (delivery_id, status) SELECT id, 'preparing' FROM d`

	selectDelivery        = `SELECT ` + deliveryColumns + ` FROM deliveries d WHERE d.id = $1`
	lockDeliverySQL       = selectDelivery + ` FOR UPDATE`
	selectOrderDeliveries = `SELECT ` + deliveryColumns + ` FROM deliveries d WHERE d.order_id = ANY($1) ORDER BY d.created_at, d.id`

	countShippedSQL = `SELECT count(*) FROM deliveries WHERE order_id = $1 AND status <> 'preparing'`

	updateDeliverySQL = `
UPDATE deliveries SET status = $2, carrier = $3, tracking_number = $4, updated_at = now()
WHERE id = $1`

	insertDeliveryEventSQL = `
INSERT INTO delivery_events (delivery_id, status, carrier, tracking_number) VALUES ($1, $2, $3, $4)`

	selectDeliveryEvents = `
SELECT delivery_id, status, carrier, tracking_number, at FROM delivery_events
WHERE delivery_id = ANY($1) ORDER BY id`

	// A seller's sales are their deliveries, newest first, with what the
	// order says about them; the index on (seller_id, created_at DESC, id
	// DESC) serves the filter and the order.
	selectSales = `
SELECT ` + deliveryColumns + `, o.status, o.created_at, o.currency,
	o.ship_name, o.ship_line1, o.ship_line2, o.ship_city, o.ship_postal_code, o.ship_country
FROM deliveries d JOIN orders o ON o.id = d.order_id
WHERE d.seller_id = $1 AND ($2::text = '' OR d.status = $2)
	AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4::uuid))
ORDER BY d.created_at DESC, d.id DESC
LIMIT $5`
)

func insertDelivery(ctx context.Context, tx pgx.Tx, id, orderID, seller uuid.UUID) error {
	if _, err := tx.Exec(ctx, insertDeliverySQL, id, orderID, seller); err != nil {
		return fmt.Errorf("create delivery of order %s: %w", orderID, constraints.Map(err))
	}
	return nil
}

func countShippedDeliveries(ctx context.Context, q pgdb.Querier, orderID uuid.UUID) (int, error) {
	var n int
	if err := q.QueryRow(ctx, countShippedSQL, orderID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count shipped deliveries of order %s: %w", orderID, err)
	}
	return n, nil
}

// lockOrderOfDelivery locks and returns the order of seller's delivery id;
// another seller's delivery is NotFound.
func lockOrderOfDelivery(ctx context.Context, tx pgx.Tx, id, seller uuid.UUID) (Order, error) {
	o, err := scanOrder(tx.QueryRow(ctx, lockOrderOfDeliverySQL, id, seller))
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, errDeliveryNotFound(id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("lock order of delivery %s: %w", id, err)
	}
	return o, nil
}

func lockDelivery(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Delivery, error) {
	d, err := scanDelivery(tx.QueryRow(ctx, lockDeliverySQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, errDeliveryNotFound(id)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("lock delivery %s: %w", id, err)
	}
	return d, nil
}

func getDelivery(ctx context.Context, q pgdb.Querier, id uuid.UUID) (Delivery, error) {
	d, err := scanDelivery(q.QueryRow(ctx, selectDelivery, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, errDeliveryNotFound(id)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s: %w", id, err)
	}
	events, err := listDeliveryEvents(ctx, q, []uuid.UUID{id})
	if err != nil {
		return Delivery{}, err
	}
	d.History = events[id]
	return d, nil
}

func updateDelivery(ctx context.Context, tx pgx.Tx, d *Delivery) error {
	if _, err := tx.Exec(ctx, updateDeliverySQL, d.ID, string(d.Status), d.Carrier, d.TrackingNumber); err != nil {
		return fmt.Errorf("update delivery %s: %w", d.ID, constraints.Map(err))
	}
	return nil
}

func insertDeliveryEvent(ctx context.Context, tx pgx.Tx, d *Delivery) error {
	if _, err := tx.Exec(ctx, insertDeliveryEventSQL, d.ID, string(d.Status), d.Carrier, d.TrackingNumber); err != nil {
		return fmt.Errorf("record move of delivery %s: %w", d.ID, constraints.Map(err))
	}
	return nil
}

// listDeliveries returns the deliveries of the orders, with their
// histories, by order.
func listDeliveries(ctx context.Context, q pgdb.Querier, orderIDs []uuid.UUID) (map[uuid.UUID][]Delivery, error) {
	rows, err := q.Query(ctx, selectOrderDeliveries, orderIDs)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) { return scanDelivery(row) })
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	out := map[uuid.UUID][]Delivery{}
	if len(list) == 0 {
		return out, nil
	}
	ids := make([]uuid.UUID, len(list))
	for i, d := range list {
		ids[i] = d.ID
	}
	events, err := listDeliveryEvents(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	for _, d := range list {
		d.History = events[d.ID]
		out[d.OrderID] = append(out[d.OrderID], d)
	}
	return out, nil
}

func listDeliveryEvents(ctx context.Context, q pgdb.Querier, ids []uuid.UUID) (map[uuid.UUID][]DeliveryEvent, error) {
	rows, err := q.Query(ctx, selectDeliveryEvents, ids)
	if err != nil {
		return nil, fmt.Errorf("list delivery events: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID][]DeliveryEvent{}
	for rows.Next() {
		var id uuid.UUID
		var e DeliveryEvent
		if err := rows.Scan(&id, &e.Status, &e.Carrier, &e.TrackingNumber, &e.At); err != nil {
			return nil, fmt.Errorf("list delivery events: %w", err)
		}
		out[id] = append(out[id], e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list delivery events: %w", err)
	}
	return out, nil
}

// listSales returns a page of seller's deliveries as sales, without lines
// or histories.
func listSales(ctx context.Context, q pgdb.Querier, seller uuid.UUID, status DeliveryStatus, after *Cursor, limit int) ([]Sale, error) {
	at, id := cursorArgs(after)
	rows, err := q.Query(ctx, selectSales, seller, string(status), at, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list sales: %w", err)
	}
	sales, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Sale, error) {
		var s Sale
		a := &s.Address
		d, err := scanDelivery(row, &s.OrderStatus, &s.OrderedAt, &s.Currency,
			&a.Name, &a.Line1, &a.Line2, &a.City, &a.PostalCode, &a.Country)
		s.Delivery, s.OrderID = d, d.OrderID
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sales: %w", err)
	}
	return sales, nil
}

func errDeliveryNotFound(id uuid.UUID) error {
	return apierr.Errorf(apierr.NotFound, "delivery %s not found", id)
}

// Emails.

// Addresses.

const (
	addressColumns    = `id, user_id, name, line1, line2, city, postal_code, country, created_at`
	selectAddresses   = `SELECT ` + addressColumns + ` FROM addresses WHERE user_id = $1 ORDER BY created_at, id`
	countAddressesSQL = `SELECT count(*) FROM addresses WHERE user_id = $1`
	insertAddressSQL  = `
INSERT INTO addresses (id, user_id, name, line1, line2, city, postal_code, country)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING ` + addressColumns
	deleteAddressSQL = `DELETE FROM addresses WHERE id = $1 AND user_id = $2`
)

func scanAddress(row pgx.Row) (SavedAddress, error) {
	var s SavedAddress
	a := &s.Address
	err := row.Scan(&s.ID, &s.UserID, &a.Name, &a.Line1, &a.Line2, &a.City, &a.PostalCode, &a.Country, &s.CreatedAt)
	return s, err
}

func listAddresses(ctx context.Context, q pgdb.Querier, user uuid.UUID) ([]SavedAddress, error) {
	rows, err := q.Query(ctx, selectAddresses, user)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SavedAddress, error) { return scanAddress(row) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	return list, nil
}

func countAddresses(ctx context.Context, q pgdb.Querier, user uuid.UUID) (int, error) {
	var n int
	if err := q.QueryRow(ctx, countAddressesSQL, user).Scan(&n); err != nil {
		return 0, fmt.Errorf("count addresses: %w", err)
	}
	return n, nil
}

func insertAddress(ctx context.Context, q pgdb.Querier, id, user uuid.UUID, a Address) (SavedAddress, error) {
	s, err := scanAddress(q.QueryRow(ctx, insertAddressSQL, id, user, a.Name, a.Line1, a.Line2, a.City, a.PostalCode, a.Country))
	if err != nil {
		return SavedAddress{}, fmt.Errorf("insert address: %w", constraints.Map(err))
	}
	return s, nil
}

func deleteAddress(ctx context.Context, q pgdb.Querier, user, id uuid.UUID) error {
	tag, err := q.Exec(ctx, deleteAddressSQL, id, user)
	if err != nil {
		return fmt.Errorf("delete address %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return apierr.Errorf(apierr.NotFound, "address %s not found", id)
	}
	return nil
}

// Metrics.

// The orders in each of some statuses and the age of the oldest, in one
// query that the index on (status, status_changed_at, id) serves: a range
// of it per status, whatever the size of the table.
const selectInProgress = `
SELECT status, count(*), extract(epoch FROM now() - min(status_changed_at))::float8
FROM orders WHERE status = ANY($1)
GROUP BY status`

// inProgress is how many orders are in a status, and for how long the
// oldest has been.
type inProgress struct {
	orders int64
	oldest float64 // seconds
}

// countInProgress reads the orders in each of statuses; a status without
// orders is absent.
func countInProgress(ctx context.Context, q pgdb.Querier, statuses []Status) (map[Status]inProgress, error) {
	names := make([]string, len(statuses))
	for i, st := range statuses {
		names[i] = string(st)
	}
	rows, err := q.Query(ctx, selectInProgress, names)
	if err != nil {
		return nil, fmt.Errorf("count orders in progress: %w", err)
	}
	defer rows.Close()
	out := map[Status]inProgress{}
	for rows.Next() {
		var st Status
		var n inProgress
		if err := rows.Scan(&st, &n.orders, &n.oldest); err != nil {
			return nil, fmt.Errorf("count orders in progress: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count orders in progress: %w", err)
	}
	return out, nil
}
