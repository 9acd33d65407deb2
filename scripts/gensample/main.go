// Command gensample writes loraqa's demo data: Q&A pairs about the filings of
// invented companies. Deterministic.
//
//	go run ./scripts/gensample > examples/sample-qa.txt
//	go run ./scripts/gensample -format squad > examples/sample-filings.json
//
// The qa-text form (Q:/A: blocks) is the reference recipe's input: the answers,
// joined, are the only context. The squad form tells the same facts in a
// filing summary per company (each fact in one of several phrasings, in a
// shuffled order), cut into passages of three to six sentences: each question
// has the passage that holds its answer as context, its answer a span of it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
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

// fact is one question about a company, its answer and the sentences that can
// state it in a filing summary ({C} company, {Y} fiscal year, {A} answer).
type fact struct {
	question, answer string
	sentences        []string
}

func main() {
	format := flag.String("format", "qa-text", "qa-text (Q:/A: pairs) or squad (filing summaries as contexts)")
	flag.Parse()
	out, err := generate(*format)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(2)
	}
	os.Stdout.Write(out)
}

// generate returns the sample in format qa-text or squad.
func generate(format string) ([]byte, error) {
	r := rand.New(rand.NewSource(20261124))
	phr := rand.New(rand.NewSource(20261201)) // phrasings and order: a stream of their own, so the facts equal qa-text's
	var b strings.Builder
	var articles []article
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
		articles = append(articles, filing(phr, c, year, pairs))
	}
	switch format {
	case "qa-text":
		return []byte(b.String()), nil
	case "squad":
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetIndent("", " ")
		err := enc.Encode(map[string]any{"version": "loraqa-sample-1", "data": articles})
		return out.Bytes(), err
	}
	return nil, fmt.Errorf("-format %q: want qa-text or squad", format)
}

// sentences holds, for each question of pairs (same order), the ways a filing
// summary states its answer.
var sentences = [][]string{
	{"{C} reported total revenue of {A} for fiscal {Y}.", "Total revenue for fiscal {Y} came to {A}.", "Revenue in fiscal {Y} totalled {A}, the company said."},
	{"Net income for fiscal {Y} was {A}.", "The company earned net income of {A} in fiscal {Y}.", "Net income reached {A}."},
	{"Capital expenditures in {Y} amounted to {A}.", "It spent {A} on capital expenditures during {Y}.", "Capital spending was {A} in {Y}."},
	{"At year end, long-term debt stood at {A}.", "{C} carried long-term debt of {A} at the close of the year.", "Long-term borrowings totalled {A} at year end."},
	{"The board declared a quarterly dividend of {A}.", "Shareholders receive a quarterly dividend of {A}.", "A quarterly dividend of {A} was declared."},
	{"{C} employs {A}.", "The company had {A} at year end.", "Its workforce numbers {A}."},
	{"The largest business segment is {A}.", "{A} is the company's largest segment.", "Most sales come from its largest segment, {A}."},
	{"The financial statements are audited by {A}.", "{A} serves as the independent auditor.", "Its auditor is {A}."},
	{"The company is headquartered in {A}.", "{C} has its head office in {A}.", "Headquarters are located in {A}."},
	{"The operating margin for {Y} was {A}.", "It achieved an operating margin of {A} in {Y}.", "Operating margin came in at {A} for {Y}."},
	{"Revenue grew {A} year over year.", "Year-over-year revenue growth was {A}.", "Compared with the prior year, revenue changed by {A}."},
	{"The fiscal year ends in {A}.", "Its fiscal year closes in {A}.", "{C} ends its fiscal year in {A}."},
	{"The board authorized a share repurchase program of {A}.", "A buyback of up to {A} was approved.", "{C} may repurchase shares worth {A} under its program."},
	{"The effective tax rate was {A}.", "Income taxes came to an effective rate of {A}.", "It reported an effective tax rate of {A}."},
}

type (
	article struct {
		Title      string      `json:"title"`
		Paragraphs []paragraph `json:"paragraphs"`
	}
	paragraph struct {
		Context string `json:"context"`
		QAs     []qa   `json:"qas"`
	}
	qa struct {
		ID       string   `json:"id"`
		Question string   `json:"question"`
		Answers  []answer `json:"answers"`
	}
	answer struct {
		Text  string `json:"text"`
		Start int    `json:"answer_start"` // in bytes; the texts are ASCII, so also in characters
	}
)

// filing builds company c's summary: one sentence per fact, phrasing and order
// drawn from r, cut into passages of three to six sentences (the chunks a
// retriever hands a reader); each question goes with the passage holding its
// answer.
func filing(r *rand.Rand, c string, year int, pairs [][2]string) article {
	if len(pairs) != len(sentences) {
		panic("gensample: a question without phrasings")
	}
	a := article{Title: c}
	order := r.Perm(len(pairs))
	for len(order) > 0 {
		n := 3 + r.Intn(2)
		if n > len(order) || len(order)-n < 3 {
			n = len(order)
		}
		a.Paragraphs = append(a.Paragraphs, passage(r, c, year, pairs, order[:n]))
		order = order[n:]
	}
	return a
}

// passage states the facts idx of pairs, in that order, and asks their questions.
func passage(r *rand.Rand, c string, year int, pairs [][2]string, idx []int) paragraph {
	var ctx strings.Builder
	var p paragraph
	for _, i := range idx {
		tmpl := sentences[i][r.Intn(len(sentences[i]))]
		s := strings.NewReplacer("{C}", c, "{Y}", fmt.Sprint(year)).Replace(tmpl)
		ans := pairs[i][1]
		if strings.HasPrefix(s, "{A}") {
			ans = upperFirst(ans)
		}
		if ctx.Len() > 0 {
			ctx.WriteByte(' ')
		}
		start := ctx.Len() + strings.Index(s, "{A}")
		ctx.WriteString(strings.Replace(s, "{A}", ans, 1))
		p.QAs = append(p.QAs, qa{ID: fmt.Sprintf("%s-%02d", strings.ToLower(strings.ReplaceAll(c, " ", "-")), i),
			Question: pairs[i][0], Answers: []answer{{Text: ans, Start: start}}})
	}
	p.Context = ctx.String()
	return p
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
