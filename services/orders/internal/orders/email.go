package orders

import (
	"fmt"
	"html"
	"strings"

	"github.com/mylittleshopping/shop/services/platform/mail"
	"github.com/mylittleshopping/shop/services/platform/validate"
)

// The emails of the orders service. Each is queued with mail.Enqueue in the
// transaction of its event, so it exists if and only if the event
// happened, and the outbox relay sends it at least once, with the outbox
// message id as Mailjet's CustomID. A repeated event (a transition to the
// current status) is a no-op and queues nothing, so each event has one
// email.

// orderURL is the link to an order in the buyer's emails.
func (s *Service) orderURL(o *Order) string {
	return strings.TrimRight(s.cfg.OrderURL, "/") + "/" + o.ID.String()
}

// orderConfirmedEmail tells the buyer the order went through.
func (s *Service) orderConfirmedEmail(o *Order) mail.Message {
	var text, htm strings.Builder
	fmt.Fprintf(&text, "Hello %s,\n\nThank you for your order %s: it is confirmed and the sellers are preparing it.\n\n", o.Address.Name, o.ID)
	fmt.Fprintf(&htm, "<p>Hello %s,</p><p>Thank you for your order %s: it is confirmed and the sellers are preparing it.</p>",
		html.EscapeString(o.Address.Name), o.ID)
	writeLines(&text, &htm, o.Lines, o.Currency)
	fmt.Fprintf(&text, "Total: %s\n\nShipping to:\n%s\n\nFollow it at %s\n", formatMoney(o.Total, o.Currency), o.Address.text(), s.orderURL(o))
	fmt.Fprintf(&htm, "<p>Total: <strong>%s</strong></p><p>Shipping to:<br>%s</p><p><a href=\"%s\">Follow my order</a></p>",
		formatMoney(o.Total, o.Currency), strings.ReplaceAll(html.EscapeString(o.Address.text()), "\n", "<br>"), html.EscapeString(s.orderURL(o)))
	return mail.Message{
		To:      []mail.Address{{Email: o.BuyerEmail, Name: o.Address.Name}},
		Subject: fmt.Sprintf("Your order %s is confirmed", Ref(o.ID)),
		Text:    text.String(),
		HTML:    htm.String(),
	}
}

// newSaleEmail tells one seller what to ship: their lines of the order
// (never another seller's) and the address.
func (s *Service) newSaleEmail(o *Order, mine []Line) mail.Message {
	var sum int64
	for _, l := range mine {
		sum += l.Total
	}
	var text, htm strings.Builder
	fmt.Fprintf(&text, "Hello,\n\nYou have a new sale in order %s. Please prepare:\n\n", o.ID)
	fmt.Fprintf(&htm, "<p>Hello,</p><p>You have a new sale in order %s. Please prepare:</p>", o.ID)
	writeLines(&text, &htm, mine, o.Currency)
	fmt.Fprintf(&text, "Your part: %s\n\nShip to:\n%s\n\nMark it shipped with its carrier and tracking number in your sales.\n",
		formatMoney(sum, o.Currency), o.Address.text())
	fmt.Fprintf(&htm, "<p>Your part: <strong>%s</strong></p><p>Ship to:<br>%s</p><p>Mark it shipped with its carrier and tracking number in your sales.</p>",
		formatMoney(sum, o.Currency), strings.ReplaceAll(html.EscapeString(o.Address.text()), "\n", "<br>"))
	return mail.Message{
		To:      []mail.Address{{Email: mine[0].SellerEmail}},
		Subject: fmt.Sprintf("New sale: order %s", Ref(o.ID)),
		Text:    text.String(),
		HTML:    htm.String(),
	}
}

// deliverySubjects are the subjects of the buyer's delivery emails.
var deliverySubjects = map[DeliveryStatus]string{
	Shipped:   "Your order %s has shipped",
	InTransit: "Your order %s is on its way",
	Delivered: "Your order %s was delivered",
	Returned:  "Your order %s was returned to the seller",
}

// DeliverySubject is the subject of the buyer's email for a delivery of
// order ref reaching status.
func DeliverySubject(status DeliveryStatus, ref string) string {
	return fmt.Sprintf(deliverySubjects[status], ref)
}

// deliveryEmail tells the buyer where one parcel of the order is, with its
// carrier and tracking number.
func (s *Service) deliveryEmail(o *Order, d *Delivery, lines []Line) mail.Message {
	var text, htm strings.Builder
	news := map[DeliveryStatus]string{
		Shipped:   "has shipped",
		InTransit: "is on its way",
		Delivered: "was delivered",
		Returned:  "was returned to the seller",
	}[d.Status]
	fmt.Fprintf(&text, "Hello %s,\n\nA parcel of your order %s %s.\n\nCarrier: %s\nTracking number: %s\n\nIn this parcel:\n",
		o.Address.Name, o.ID, news, d.Carrier, d.TrackingNumber)
	fmt.Fprintf(&htm, "<p>Hello %s,</p><p>A parcel of your order %s %s.</p><p>Carrier: %s<br>Tracking number: <strong>%s</strong></p><p>In this parcel:</p>",
		html.EscapeString(o.Address.Name), o.ID, news, html.EscapeString(d.Carrier), html.EscapeString(d.TrackingNumber))
	writeLines(&text, &htm, lines, o.Currency)
	fmt.Fprintf(&text, "Follow it at %s\n", s.orderURL(o))
	fmt.Fprintf(&htm, "<p><a href=\"%s\">Follow my order</a></p>", html.EscapeString(s.orderURL(o)))
	return mail.Message{
		To:      []mail.Address{{Email: o.BuyerEmail, Name: o.Address.Name}},
		Subject: DeliverySubject(d.Status, Ref(o.ID)),
		Text:    text.String(),
		HTML:    htm.String(),
	}
}

// writeLines writes the lines as a list in both bodies.
func writeLines(text, htm *strings.Builder, lines []Line, cur string) {
	htm.WriteString("<ul>")
	for _, l := range lines {
		fmt.Fprintf(text, "  %d × %s at %s = %s\n", l.Quantity, l.Name, formatMoney(l.UnitPrice, cur), formatMoney(l.Total, cur))
		fmt.Fprintf(htm, "<li>%d × %s at %s = %s</li>", l.Quantity, html.EscapeString(l.Name), formatMoney(l.UnitPrice, cur), formatMoney(l.Total, cur))
	}
	htm.WriteString("</ul>")
	text.WriteString("\n")
}

// text is the address as lines of an envelope.
func (a Address) text() string {
	lines := []string{a.Name, a.Line1}
	if a.Line2 != "" {
		lines = append(lines, a.Line2)
	}
	return strings.Join(append(lines, a.PostalCode+" "+a.City, a.Country), "\n")
}

// formatMoney writes an amount of minor units with its currency's decimals
// (25.99 EUR, 2599 JPY, 1.234 BHD), in integer arithmetic. The decimals are
// ISO 4217's minor units, which amounts are counted in, not a locale's
// display digits (CLDR shows IDR without its cents).
func formatMoney(amount int64, code string) string {
	scale, ok := validate.MinorUnits(code)
	if !ok {
		scale = 2
	}
	if scale == 0 {
		return fmt.Sprintf("%d %s", amount, code)
	}
	sign, abs := "", uint64(amount)
	if amount < 0 {
		sign, abs = "-", uint64(-amount) // -MinInt64 wraps to itself, which uint64 reads right
	}
	unit := uint64(1)
	for range scale {
		unit *= 10
	}
	return fmt.Sprintf("%s%d.%0*d %s", sign, abs/unit, scale, abs%unit, code)
}
