package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Row is one profile at one concurrency: the shop and the reference,
// measured one after the other.
type Row struct {
	Profile   string  `json:"profile"`
	Clients   int     `json:"clients"`
	Shop      Level   `json:"shop"`
	Ref       Level   `json:"reference"`
	TputRatio float64 `json:"throughput_ratio"` // shop / reference
	P99Ratio  float64 `json:"p99_ratio"`        // shop / reference
}

// Report is one run of bench-system.
type Report struct {
	Time     string   `json:"time"`
	Machine  string   `json:"machine"`
	ShopURL  string   `json:"shop_url"`
	PerLevel string   `json:"per_level"`
	Rows     []Row    `json:"rows"`
	Ceiling  []Level  `json:"ceiling"`
	Notes    []string `json:"notes,omitempty"`
	// Traces are the request ids of one more operation of each profile,
	// made after its levels (every request of it with the same id), for
	// counting in the logs the calls it made inside the shop.
	Traces map[string]string `json:"traces,omitempty"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func newRow(profile string, clients int, shop, ref Level) Row {
	return Row{Profile: profile, Clients: clients, Shop: shop, Ref: ref,
		TputRatio: ratio(shop.Throughput, ref.Throughput), P99Ratio: ratio(shop.P99, ref.P99)}
}

func fmtErrors(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// Markdown renders the report's tables (also what stdout shows).
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# bench-system %s\n\n", r.Time)
	fmt.Fprintf(&b, "Machine: %s. Shop: %s (through the edge). Each level: %s, closed loop; the shop and the reference alternate.\n\n", r.Machine, r.ShopURL, r.PerLevel)
	b.WriteString("| profile | clients | shop ops/s | ref ops/s | shop/ref | shop p50 ms | shop p90 ms | shop p99 ms | ref p99 ms | p99 shop/ref | shop errors | ref errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, w := range r.Rows {
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.3f× | %.2f | %.2f | %.2f | %.2f | %.2f× | %s | %s |\n",
			w.Profile, w.Clients, w.Shop.Throughput, w.Ref.Throughput, w.TputRatio,
			w.Shop.P50, w.Shop.P90, w.Shop.P99, w.Ref.P99, w.P99Ratio, fmtErrors(w.Shop.Errors), fmtErrors(w.Ref.Errors))
	}
	if len(r.Ceiling) > 0 {
		b.WriteString("\nHTTP ceiling (constant JSON, same process as the reference):\n\n")
		b.WriteString("| clients | req/s | p50 ms | p99 ms | errors |\n|---:|---:|---:|---:|---|\n")
		for _, c := range r.Ceiling {
			fmt.Fprintf(&b, "| %d | %.1f | %.2f | %.2f | %s |\n", c.Clients, c.Throughput, c.P50, c.P99, fmtErrors(c.Errors))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// The plot: two panels (throughput above, p99 below) against concurrency
// on a log scale; one colour per profile, the shop solid, the reference
// dashed. The standard library has no font: the axes' numbers are drawn
// with a 3×5 digit font, and the Markdown file names the colours.
const (
	plotW, plotH = 960, 720
	margin       = 40
)

var palette = map[string]color.RGBA{
	"browse":   {0x1f, 0x77, 0xb4, 0xff},
	"search":   {0xff, 0x7f, 0x0e, 0xff},
	"detail":   {0x2c, 0xa0, 0x2c, 0xff},
	"checkout": {0xd6, 0x27, 0x28, 0xff},
	"mixed":    {0x94, 0x67, 0xbd, 0xff},
}

// PlotLegend says what the PNG's colours are.
func PlotLegend() string {
	return "Plot: throughput (top) and p99 (bottom) against clients (log scales, labelled decades); shop solid, reference dashed; " +
		"browse blue, search orange, detail green, checkout red, mixed purple."
}

type canvas struct{ *image.RGBA }

func (c canvas) line(x0, y0, x1, y1 int, col color.Color, dashed bool) {
	dx, dy := x1-x0, y1-y0
	n := max(abs(dx), abs(dy), 1)
	for i := 0; i <= n; i++ {
		if dashed && (i/6)%2 == 1 {
			continue
		}
		x, y := x0+dx*i/n, y0+dy*i/n
		for ox := -1; ox <= 1; ox++ {
			for oy := -1; oy <= 1; oy++ {
				c.Set(x+ox, y+oy, col)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// WritePNG draws the report's rows.
func (r *Report) WritePNG(w io.Writer) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	c := canvas{img}
	levels := map[int]bool{}
	for _, row := range r.Rows {
		levels[row.Clients] = true
	}
	ls := make([]int, 0, len(levels))
	for l := range levels {
		ls = append(ls, l)
	}
	sort.Ints(ls)
	xOf := func(clients int) int {
		for i, l := range ls {
			if l == clients {
				if len(ls) == 1 {
					return plotW / 2
				}
				return margin + i*(plotW-2*margin)/(len(ls)-1)
			}
		}
		return margin
	}
	panelH := (plotH - 3*margin) / 2
	grey := color.RGBA{0x80, 0x80, 0x80, 0xff}
	light := color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	for p := 0; p < 2; p++ {
		top := margin + p*(panelH+margin)
		bottom := top + panelH
		for _, l := range ls {
			c.line(xOf(l), top, xOf(l), bottom, light, false)
		}
		c.line(margin, bottom, plotW-margin, bottom, grey, false)
		c.line(margin, top, margin, bottom, grey, false)
		value := func(l Level) float64 {
			if p == 0 {
				return l.Throughput
			}
			return l.P99
		}
		// Both the shop and the reference share a panel's scale: log10,
		// from the decade below the smallest value to the one above the
		// largest, each decade a labelled grid line.
		lo, hi := math.Inf(1), 0.0
		for _, row := range r.Rows {
			for _, v := range []float64{value(row.Shop), value(row.Ref)} {
				if v > 0 {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
		if hi == 0 {
			lo, hi = 1, 10
		}
		d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if d1 <= d0 {
			d1 = d0 + 1
		}
		yOf := func(v float64) int {
			if v <= 0 {
				return bottom
			}
			return bottom - int((math.Log10(v)-d0)/(d1-d0)*float64(panelH))
		}
		for d := d0; d <= d1; d++ {
			y := yOf(math.Pow(10, d))
			c.line(margin, y, plotW-margin, y, light, false)
			c.text(2, y-5, strconv.FormatFloat(math.Pow(10, d), 'f', -1, 64), grey)
		}
		for _, l := range ls {
			c.text(xOf(l)-4, bottom+8, strconv.Itoa(l), grey)
		}
		for _, prof := range profiles {
			var pts []Row
			for _, row := range r.Rows {
				if row.Profile == prof {
					pts = append(pts, row)
				}
			}
			sort.Slice(pts, func(i, j int) bool { return pts[i].Clients < pts[j].Clients })
			col := palette[prof]
			for i := 1; i < len(pts); i++ {
				c.line(xOf(pts[i-1].Clients), yOf(value(pts[i-1].Shop)), xOf(pts[i].Clients), yOf(value(pts[i].Shop)), col, false)
				c.line(xOf(pts[i-1].Clients), yOf(value(pts[i-1].Ref)), xOf(pts[i].Clients), yOf(value(pts[i].Ref)), col, true)
			}
			for _, pt := range pts {
				c.line(xOf(pt.Clients)-3, yOf(value(pt.Shop)), xOf(pt.Clients)+3, yOf(value(pt.Shop)), col, false)
			}
		}
	}
	return png.Encode(w, img)
}

// digits is a 3×5 bitmap font of the characters axis labels need.
var digits = map[rune][5]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"},
	'1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"},
	'3': {"###", "..#", ".##", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"},
	'5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"},
	'7': {"###", "..#", "..#", "..#", "..#"},
	'8': {"###", "#.#", "###", "#.#", "###"},
	'9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."},
}

// text draws s at (x, y), each font pixel 2×2.
func (c canvas) text(x, y int, s string, col color.Color) {
	for _, ch := range s {
		g, ok := digits[ch]
		if !ok {
			x += 8
			continue
		}
		for row, line := range g {
			for i, px := range line {
				if px == '#' {
					for ox := 0; ox < 2; ox++ {
						for oy := 0; oy < 2; oy++ {
							c.Set(x+i*2+ox, y+row*2+oy, col)
						}
					}
				}
			}
		}
		x += 8
	}
}
