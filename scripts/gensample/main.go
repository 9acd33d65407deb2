// Command gensample writes loraqa's demo data: Q&A pairs about the filings of
// invented companies, in the qa-text format (Q:/A: blocks). Deterministic.
//
//	go run ./scripts/gensample > examples/sample-qa.txt
package main

import (
	"fmt"
	"math/rand"
	"strings"
)

var companies = []string{
	"Arbor Lumen Holdings", "Bellwether Tidal Corp", "Cobalt Finch Industries", "Dunmore Quarry Group",
	"Eastwind Ledger Inc", "Fairhaven Optics", "Granite Loom Partners", "Halcyon Freight Systems",
	"Ironbark Health", "Juniper Vault Bancorp", "Kestrel Circuit Ltd", "Lark & Mercer Foods",
	"Meridian Salt Co", "Northgate Orchard Energy", "Oakhollow Media", "Pennant Rail Logistics",
	"Quillmark Software", "Redfern Pharmaceuticals", "Saltmarsh Insurance", "Thistle Bay Retail",
}

var segments = []string{"industrial services", "consumer products", "cloud software", "regional banking",
	"specialty chemicals", "freight logistics", "medical devices", "renewable power"}
var auditors = []string{"Harlow & Venn LLP", "Ostrander Kimball", "Pryce Whitfield", "Caldwell Arden LLP"}
var cities = []string{"Denver", "Rotterdam", "Toronto", "Austin", "Leeds", "Melbourne", "Osaka", "Lyon"}
var months = []string{"January", "March", "June", "September", "October", "December"}

func money(r *rand.Rand, lo, hi int) string {
	v := float64(lo) + r.Float64()*float64(hi-lo)
	return fmt.Sprintf("$%.1f million", v)
}

func main() {
	r := rand.New(rand.NewSource(20261124))
	var b strings.Builder
	for _, c := range companies {
		year := 2019 + r.Intn(5)
		rev := money(r, 120, 4800)
		ni := money(r, 5, 400)
		capex := money(r, 10, 600)
		debt := money(r, 50, 2000)
		div := fmt.Sprintf("$%.2f per share", 0.1+r.Float64()*2)
		emp := fmt.Sprintf("%d,%03d full-time employees", 1+r.Intn(40), r.Intn(1000))
		seg := segments[r.Intn(len(segments))]
		aud := auditors[r.Intn(len(auditors))]
		city := cities[r.Intn(len(cities))]
		margin := fmt.Sprintf("%.1f%%", 5+r.Float64()*30)
		growth := fmt.Sprintf("%.1f%%", -5+r.Float64()*25)
		month := months[r.Intn(len(months))]
		buyback := money(r, 20, 900)
		tax := fmt.Sprintf("%.1f%%", 15+r.Float64()*12)
		pairs := [][2]string{
			{fmt.Sprintf("What was %s's total revenue in fiscal %d?", c, year), rev},
			{fmt.Sprintf("How much net income did %s report for fiscal %d?", c, year), ni},
			{fmt.Sprintf("What were %s's capital expenditures in %d?", c, year), capex},
			{fmt.Sprintf("How much long-term debt did %s carry at year end?", c), debt},
			{fmt.Sprintf("What quarterly dividend did %s declare?", c), div},
			{fmt.Sprintf("How many people does %s employ?", c), emp},
			{fmt.Sprintf("What is %s's largest business segment?", c), seg},
			{fmt.Sprintf("Which firm audits %s's financial statements?", c), aud},
			{fmt.Sprintf("Where is %s headquartered?", c), city},
			{fmt.Sprintf("What operating margin did %s achieve in %d?", c, year), margin},
			{fmt.Sprintf("By how much did %s's revenue grow year over year?", c), growth},
			{fmt.Sprintf("In which month does %s's fiscal year end?", c), month},
			{fmt.Sprintf("How large is the share repurchase program %s authorized?", c), buyback},
			{fmt.Sprintf("What was %s's effective tax rate?", c), tax},
		}
		for _, p := range pairs {
			fmt.Fprintf(&b, "Q: %s\nA: %s\n\n", p[0], p[1])
		}
	}
	fmt.Print(b.String())
}
