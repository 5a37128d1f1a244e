//go:build ignore

// gen writes the benchmark bodies page.html and api.json: a product-listing page and
// the API answer behind it, about 64 KiB each, built from a fixed seed so every run
// writes the same bytes. Real pages repeat markup and vary text; these do too, so the
// compression ratios and speeds the benchmarks print are those of real traffic, not
// of a repeated string. Run from this directory: go run gen.go
package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
)

const size = 64 << 10

var (
	adjectives = []string{"compact", "wireless", "organic", "stainless", "ergonomic", "vintage", "portable", "waterproof", "handmade", "smart", "recycled", "ultralight", "heavy-duty", "minimalist", "adjustable", "foldable"}
	nouns      = []string{"kettle", "headphones", "backpack", "desk lamp", "chair", "water bottle", "keyboard", "tent", "blender", "jacket", "monitor", "notebook", "speaker", "frying pan", "sneakers", "watch"}
	brands     = []string{"Nordwind", "Alpenglow", "Kestrel", "Bluefin", "Orchard and Co", "Tessera", "Lumen", "Halcyon", "Driftwood", "Quarry"}
	words      = strings.Fields("the a with for and of in to made from designed every day that keeps your you it is on light strong easy clean fits most comes two year warranty free shipping returns within days quality materials tested by our team durable finish soft touch battery lasts hours charge fast cable included")
	tags       = []string{"new", "sale", "bestseller", "eco", "limited", "bundle", "gift", "outdoor", "kitchen", "office"}
	currencies = []string{"EUR", "USD", "GBP"}
)

func main() {
	r := rand.New(rand.NewPCG(2024, 5))
	if err := os.WriteFile("page.html", page(r), 0o644); err != nil {
		panic(err)
	}
	if err := os.WriteFile("api.json", api(r), 0o644); err != nil {
		panic(err)
	}
}

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

func sentence(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = pick(r, words)
	}
	s := strings.Join(w, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func page(r *rand.Rand) []byte {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Everyday essentials | Shop</title>
<link rel="preload" href="/static/fonts/inter-var.woff2" as="font" type="font/woff2" crossorigin>
<link rel="stylesheet" href="/static/css/main.3f9a2c1e.css">
<style>
:root{--fg:#1d1d1f;--muted:#6e6e73;--accent:#0a66c2;--radius:12px}
body{margin:0;font-family:Inter,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:24px;padding:24px}
.card{border:1px solid #e5e5ea;border-radius:var(--radius);overflow:hidden;background:#fff}
.card img{width:100%;aspect-ratio:4/3;object-fit:cover}
.card h3{font-size:1rem;margin:12px 16px 4px}
.card .price{font-weight:600;margin:0 16px}
.card .desc{color:var(--muted);font-size:.875rem;margin:8px 16px 16px}
.badge{display:inline-block;padding:2px 8px;border-radius:999px;background:#eef4fb;color:var(--accent);font-size:.75rem}
</style>
</head>
<body>
<header class="site-header"><nav aria-label="Main"><a href="/" class="logo">Shop</a>
<ul class="nav"><li><a href="/c/home">Home &amp; kitchen</a></li><li><a href="/c/outdoor">Outdoor</a></li><li><a href="/c/office">Office</a></li><li><a href="/c/audio">Audio</a></li><li><a href="/c/sale">Sale</a></li></ul>
<form action="/search" method="get" role="search"><input type="search" name="q" placeholder="Search products" autocomplete="off"><button type="submit">Search</button></form></nav></header>
<main id="content"><h1>Everyday essentials</h1>
<section class="grid" data-page="1">
`)
	footer := `</section>
<nav class="pagination" aria-label="Pages"><a href="?page=1" aria-current="page">1</a><a href="?page=2">2</a><a href="?page=3">3</a><a href="?page=2" rel="next">Next</a></nav>
</main>
<footer class="site-footer"><p>&copy; 2025 Shop. Prices include VAT.</p><ul><li><a href="/help">Help</a></li><li><a href="/returns">Returns</a></li><li><a href="/privacy">Privacy</a></li></ul></footer>
<script src="/static/js/app.8c1d77b0.js" defer></script>
</body>
</html>
`
	for {
		id := 100000 + r.IntN(900000)
		name := fmt.Sprintf("%s %s %s", pick(r, brands), pick(r, adjectives), pick(r, nouns))
		slug := strings.ToLower(strings.ReplaceAll(name, " ", "-"))
		rating := 3 + 2*r.Float64()
		card := fmt.Sprintf(`<article class="card" data-id="%d" data-category="%s">
<a href="/p/%s-%d"><img src="/img/p/%d-440x330.webp" srcset="/img/p/%d-440x330.webp 1x, /img/p/%d-880x660.webp 2x" alt="%s" loading="lazy" width="440" height="330"></a>
<h3><a href="/p/%s-%d">%s</a></h3>
<p class="price">%s%d.%02d</p>
<p class="desc">%s</p>
<span class="badge">%s</span> <span class="rating" aria-label="rated %.1f out of 5">%.1f &#9733; (%d)</span>
<button class="add" data-sku="SKU-%06X" aria-label="Add %s to cart">Add to cart</button>
</article>
`, id, pick(r, tags), slug, id, id, id, id, name, slug, id, name, "&euro;", 5+r.IntN(300), r.IntN(100), sentence(r, 10+r.IntN(14)), pick(r, tags), rating, rating, r.IntN(2000), r.IntN(1<<24), name)
		if b.Len()+len(card)+len(footer) > size {
			break
		}
		b.WriteString(card)
	}
	b.WriteString(footer)
	return []byte(b.String())
}

type price struct {
	Amount   int    `json:"amount"`
	Currency string `json:"currency"`
}

type seller struct {
	ID       int     `json:"id"`
	Name     string  `json:"name"`
	Rating   float64 `json:"rating"`
	Verified bool    `json:"verified"`
}

type item struct {
	ID          int      `json:"id"`
	UUID        string   `json:"uuid"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	CreatedAt   string   `json:"created_at"`
	Tags        []string `json:"tags"`
	Price       price    `json:"price"`
	Rating      float64  `json:"rating"`
	Reviews     int      `json:"reviews"`
	InStock     bool     `json:"in_stock"`
	Seller      seller   `json:"seller"`
	Image       string   `json:"image"`
}

func api(r *rand.Rand) []byte {
	var items []item
	var out []byte
	for {
		id := 100000 + r.IntN(900000)
		it := item{
			ID:          id,
			UUID:        fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), 0x8000|r.IntN(1<<14), r.Uint64()&(1<<48-1)),
			Title:       fmt.Sprintf("%s %s %s", pick(r, brands), pick(r, adjectives), pick(r, nouns)),
			Description: sentence(r, 8+r.IntN(16)),
			CreatedAt:   fmt.Sprintf("2025-%02d-%02dT%02d:%02d:%02dZ", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)),
			Tags:        []string{pick(r, tags), pick(r, tags)},
			Price:       price{Amount: 500 + r.IntN(30000), Currency: pick(r, currencies)},
			Rating:      float64(30+r.IntN(21)) / 10,
			Reviews:     r.IntN(5000),
			InStock:     r.IntN(5) != 0,
			Seller:      seller{ID: 1000 + r.IntN(50), Name: pick(r, brands), Rating: float64(35+r.IntN(16)) / 10, Verified: r.IntN(3) != 0},
			Image:       fmt.Sprintf("https://cdn.example.com/img/p/%d-440x330.webp", id),
		}
		next, err := json.Marshal(map[string]any{"items": append(items, it), "next_cursor": "eyJwYWdlIjoyLCJzb3J0IjoicG9wdWxhciJ9", "total": 18234})
		if err != nil {
			panic(err)
		}
		if len(next) > size {
			return append(out, '\n')
		}
		items, out = append(items, it), next
	}
}
