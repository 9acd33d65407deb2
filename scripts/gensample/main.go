// Command gensample writes loraqa's demo and test data about the filings of
// invented companies. Deterministic.
//
//	go run ./scripts/gensample > examples/sample-qa.txt
//	go run ./scripts/gensample -format squad > testdata/squad-sample.json
//	go run ./scripts/gensample -format filings > examples/sample-filings.json
//
// The default format is qa-text (Q:/A: blocks): 14 question/answer pairs per
// company. -format squad writes the same companies as SQuAD v1.1 JSON: a
// paragraph of filing text per company (one in three long enough for several
// 384-token windows, with some answers past the first window), the same 14
// questions and one about a regional office with an accented city, each answer
// at its code-point offset and listed several times as SQuAD's dev set does
// (a money answer also without its unit). The contexts hold non-ASCII text
// (accents, €, curly quotes) so that code-point offsets matter: the tests'
// sample. -format filings, the demo's data, tells the same facts in a filing
// summary per company (each fact in one of several phrasings, in a shuffled
// order), cut into passages of three to six sentences: each question has the
// passage that holds its answer as context, its answer a span of it.
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

// fact is one question, its answer, and (for -format squad) the sentence of
// filing text that states it; %s in the sentence is the answer.
type fact struct{ q, a, sentence string }

// filing is one company's facts, drawn in the order the qa-text format has
// always drawn them.
func filing(r *rand.Rand, c string) []fact {
	facts, _ := filingYear(r, c)
	return facts
}

// factTexts holds, for each fact of filingYear (same order), its question and
// the sentence of filing text that states it: {C} is the company, {Y} the
// fiscal year and %s the answer.
var factTexts = [][2]string{
	{"What was {C}'s total revenue in fiscal {Y}?", "{C} reported total revenue of %s for fiscal {Y}."},
	{"How much net income did {C} report for fiscal {Y}?", "Net income for the year came to %s, after the charges described below."},
	{"What were {C}'s capital expenditures in {Y}?", "Capital expenditures were %s in {Y}, mostly for new equipment."},
	{"How much long-term debt did {C} carry at year end?", "Long-term debt stood at %s at year end."},
	{"What quarterly dividend did {C} declare?", "The board declared a quarterly dividend of %s."},
	{"How many people does {C} employ?", "The company employs %s across its sites."},
	{"What is {C}'s largest business segment?", "{C}’s largest business segment is %s."},
	{"Which firm audits {C}'s financial statements?", "The financial statements were audited by %s."},
	{"Where is {C} headquartered?", "{C} is headquartered in %s."},
	{"What operating margin did {C} achieve in {Y}?", "The operating margin reached %s in {Y}."},
	{"By how much did {C}'s revenue grow year over year?", "Revenue grew %s year over year."},
	{"In which month does {C}'s fiscal year end?", "The fiscal year ends in %s."},
	{"How large is the share repurchase program {C} authorized?", "The board also authorized a share repurchase program of %s."},
	{"What was {C}'s effective tax rate?", "The effective tax rate was %s."},
}

// filingYear is filing, and the fiscal year its questions ask about.
func filingYear(r *rand.Rand, c string) ([]fact, int) {
	year := 2019 + r.Intn(5)
	answers := []string{ // drawn in the order of factTexts
		money(r, 120, 4800), // revenue
		money(r, 5, 400),    // net income
		money(r, 10, 600),   // capital expenditures
		money(r, 50, 2000),  // long-term debt
		fmt.Sprintf("$%.2f per share", 0.1+r.Float64()*2),
		fmt.Sprintf("%d,%03d full-time employees", 1+r.Intn(40), r.Intn(1000)),
		segments[r.Intn(len(segments))],
		auditors[r.Intn(len(auditors))],
		cities[r.Intn(len(cities))],
		fmt.Sprintf("%.1f%%", 5+r.Float64()*30),  // operating margin
		fmt.Sprintf("%.1f%%", -5+r.Float64()*25), // revenue growth
		months[r.Intn(len(months))],
		money(r, 20, 900),                        // share repurchases
		fmt.Sprintf("%.1f%%", 15+r.Float64()*12), // tax rate
	}
	fill := strings.NewReplacer("{C}", c, "{Y}", fmt.Sprint(year))
	facts := make([]fact, len(factTexts))
	for i, t := range factTexts {
		facts[i] = fact{fill.Replace(t[0]), answers[i], fill.Replace(t[1])}
	}
	return facts, year
}

func qaText() string {
	r := rand.New(rand.NewSource(20261124))
	var b strings.Builder
	for _, c := range companies {
		for _, f := range filing(r, c) {
			fmt.Fprintf(&b, "Q: %s\nA: %s\n\n", f.q, f.a)
		}
	}
	return b.String()
}

var offices = []string{"Zürich", "São Paulo", "Montréal", "Kraków", "Reykjavík", "Malmö", "Düsseldorf", "Besançon"}

// filler is filing text that answers no question.
var filler = []string{
	"Management’s discussion covers the “core” business and the businesses acquired during the year.",
	"The company’s outlook assumes stable demand in its main markets and no further rate increases.",
	"Foreign-currency movements reduced reported results by about 1.5 percentage points, mostly through the €.",
	"Restructuring charges were recorded in the fourth quarter in connection with the closure of two smaller sites.",
	"Stock-based compensation is excluded from the non-GAAP measures presented in this report.",
	"Litigation reserves were broadly unchanged; no single matter is expected to be material.",
	"The integration of the acquired businesses is expected to be completed within eighteen months.",
	"Inventories rose as the company built stock ahead of the seasonal peak in the second half.",
	"Research and development spending continued at roughly the same share of revenue as the year before.",
	"The pension plans remained fully funded under the actuarial assumptions described in the notes.",
	"Supply-chain costs eased late in the year, while freight rates stayed above their pre-crisis levels.",
	"Customer briefings were held at the café-style visitor centres the company opened last spring.",
	"The company repaid a revolving credit facility early and entered into a new five-year agreement.",
	"Goodwill was tested for impairment in the fourth quarter and no impairment was recorded.",
}

type squadAnswer struct {
	Text        string `json:"text"`
	AnswerStart int    `json:"answer_start"`
}

type squadQA struct {
	ID       string        `json:"id"`
	Question string        `json:"question"`
	Answers  []squadAnswer `json:"answers"`
}

type squadParagraph struct {
	Context string    `json:"context"`
	QAs     []squadQA `json:"qas"`
}

type squadArticle struct {
	Title      string           `json:"title"`
	Paragraphs []squadParagraph `json:"paragraphs"`
}

func squad() []byte {
	r := rand.New(rand.NewSource(20261124)) // the facts of the qa-text format
	lay := rand.New(rand.NewSource(20261125))
	var arts []squadArticle
	for ci, c := range companies {
		facts := filing(r, c)
		office := offices[lay.Intn(len(offices))]
		facts = append(facts, fact{fmt.Sprintf("Where did %s open its newest regional office?", c), office,
			"A new regional office opened in %s during the year."})
		order := lay.Perm(len(facts))
		long := ci%3 == 0
		var ctx []rune
		starts := make([]int, len(facts))
		add := func(s string) {
			if len(ctx) > 0 {
				ctx = append(ctx, ' ')
			}
			ctx = append(ctx, []rune(s)...)
		}
		for k, fi := range order {
			if long && k == len(order)/3 { // push the rest of the facts past the first window
				for _, j := range lay.Perm(len(filler)) {
					add(filler[j])
				}
			} else if lay.Intn(3) == 0 {
				add(filler[lay.Intn(len(filler))])
			}
			f := facts[fi]
			pre, _, _ := strings.Cut(f.sentence, "%s")
			starts[fi] = len(ctx) + len([]rune(pre))
			if len(ctx) > 0 {
				starts[fi]++
			}
			add(fmt.Sprintf(f.sentence, f.a))
		}
		var qas []squadQA
		for fi, f := range facts {
			ans := []squadAnswer{{f.a, starts[fi]}}
			if num, ok := strings.CutSuffix(f.a, " million"); ok {
				ans = append(ans, squadAnswer{num, starts[fi]})
			}
			ans = append(ans, squadAnswer{f.a, starts[fi]})
			qas = append(qas, squadQA{fmt.Sprintf("gs-%02d-%02d", ci, fi), f.q, ans})
		}
		arts = append(arts, squadArticle{c, []squadParagraph{{string(ctx), qas}}})
	}
	// One article a line.
	var b strings.Builder
	b.WriteString(`{"version": "1.1", "data": [`)
	for i, a := range arts {
		var j bytes.Buffer
		enc := json.NewEncoder(&j)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a); err != nil {
			panic(err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n")
		b.Write(bytes.TrimSuffix(j.Bytes(), []byte("\n")))
	}
	b.WriteString("\n]}\n")
	return []byte(b.String())
}

func main() {
	format := flag.String("format", "qa-text", "qa-text, squad (the tests' sample) or filings (the demo's passages)")
	flag.Parse()
	out, err := generate(*format)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(2)
	}
	os.Stdout.Write(out)
}

// generate returns the sample in format qa-text, squad or filings.
func generate(format string) ([]byte, error) {
	switch format {
	case "qa-text":
		return []byte(qaText()), nil
	case "squad":
		return squad(), nil
	case "filings":
		return filings()
	}
	return nil, fmt.Errorf("-format %q: want qa-text, squad or filings", format)
}

// filings is the demo's data: every company's facts (those of qa-text), told
// as passages.
func filings() ([]byte, error) {
	r := rand.New(rand.NewSource(20261124))   // the facts of the qa-text format
	phr := rand.New(rand.NewSource(20261201)) // phrasings and order
	var articles []article
	for _, c := range companies {
		facts, year := filingYear(r, c)
		pairs := make([][2]string, len(facts))
		for i, f := range facts {
			pairs[i] = [2]string{f.q, f.a}
		}
		articles = append(articles, passages(phr, c, year, pairs))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", " ")
	err := enc.Encode(map[string]any{"version": "loraqa-sample-1", "data": articles})
	return out.Bytes(), err
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

// passages builds company c's summary: one sentence per fact, phrasing and order
// drawn from r, cut into passages of three to six sentences (the chunks a
// retriever hands a reader); each question goes with the passage holding its
// answer.
func passages(r *rand.Rand, c string, year int, pairs [][2]string) article {
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
