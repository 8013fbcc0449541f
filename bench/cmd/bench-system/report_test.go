package main

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("p%v: got %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: got %v", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("one value: got %v", got)
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	l := summarize(lat, map[string]int{"429": 2, "500": 1}, 2*time.Second)
	if l.OK != 4 || l.Ops != 7 {
		t.Errorf("ok %d ops %d, want 4 and 7", l.OK, l.Ops)
	}
	if l.Throughput != 2 {
		t.Errorf("throughput %v, want 2/s", l.Throughput)
	}
	if l.P50 != 2 || l.P99 != 4 {
		t.Errorf("p50 %v p99 %v, want 2 and 4 ms", l.P50, l.P99)
	}
	if l := summarize(nil, map[string]int{}, time.Second); l.Errors != nil || l.Throughput != 0 {
		t.Errorf("empty: %+v", l)
	}
}

func TestParseLevels(t *testing.T) {
	ls, err := parseLevels("1, 4,16,64")
	if err != nil || len(ls) != 4 || ls[3] != 64 {
		t.Fatalf("got %v, %v", ls, err)
	}
	for _, bad := range []string{"", "0", "x", "1,,2"} {
		if _, err := parseLevels(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAddrsAreLoopbackAndDistinct(t *testing.T) {
	a := &addrs{}
	seen := map[string]bool{}
	for i := 0; i < 70000; i++ {
		ip := a.next()
		if !ip.IsLoopback() || ip.To4()[3] == 0 || ip.To4()[3] == 255 {
			t.Fatalf("%v is not a usable loopback address", ip)
		}
		if seen[ip.String()] {
			t.Fatalf("%v handed out twice", ip)
		}
		seen[ip.String()] = true
	}
}

func sampleReport() *Report {
	r := &Report{Time: "2026-12-03T08:00:00Z", Machine: "test, 2 CPUs", ShopURL: "http://127.0.0.1:8080", PerLevel: "5s"}
	for _, prof := range profiles {
		for i, n := range []int{1, 4, 16, 64} {
			s := Level{Throughput: float64(100 * (i + 1)), P50: 1, P90: 2, P99: float64(3 + i)}
			ref := Level{Throughput: float64(400 * (i + 1)), P99: 2}
			if prof == "checkout" {
				s.Errors = map[string]int{"429": 3, "503": 1}
			}
			r.Rows = append(r.Rows, newRow(prof, n, s, ref))
		}
	}
	r.Ceiling = []Level{{Clients: 1, Throughput: 20000, P50: 0.05, P99: 0.3}}
	r.Notes = []string{"a note"}
	return r
}

func TestMarkdown(t *testing.T) {
	md := sampleReport().Markdown()
	for _, want := range []string{
		"| profile | clients | shop ops/s | ref ops/s | shop/ref |",
		"| browse | 1 | 100.0 | 400.0 | 0.250× | 1.00 | 2.00 | 3.00 | 2.00 | 1.50× | 0 | 0 |",
		"| checkout | 64 | 400.0 | 1600.0 | 0.250× |",
		"429×3 503×1",
		"| 1 | 20000.0 | 0.05 | 0.30 | 0 |",
		"- a note",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if got := strings.Count(md, "\n| "); got != 1+20+1+1 {
		t.Errorf("%d table lines, want 23:\n%s", got, md)
	}
}

func TestRatio(t *testing.T) {
	if ratio(1, 0) != 0 || ratio(1, 4) != 0.25 {
		t.Error("ratio")
	}
}

func TestPNG(t *testing.T) {
	for _, r := range []*Report{sampleReport(), {}} {
		var b bytes.Buffer
		if err := r.WritePNG(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatal("not a PNG signature")
		}
		img, err := png.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Bounds().Size(); got.X != plotW || got.Y != plotH {
			t.Errorf("size %v, want %dx%d", got, plotW, plotH)
		}
	}
}
