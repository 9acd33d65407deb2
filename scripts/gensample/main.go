// Command gensample writes loraqa's demo and test data about the filings of
// invented companies. Deterministic.
//
//	go run ./scripts/gensample > examples/sample-qa.txt
//	go run ./scripts/gensample -format squad > testdata/squad-sample.json
//
// The default format is qa-text (Q:/A: blocks): 14 question/answer pairs per
// company. -format squad writes the same companies as SQuAD v1.1 JSON: a
// paragraph of filing text per company (one in three long enough for several
// 384-token windows, with some answers past the first window), the same 14
// questions and one about a regional office with an accented city, each answer
// at its code-point offset and listed several times as SQuAD's dev set does
// (a money answer also without its unit). The contexts hold non-ASCII text
// (accents, €, curly quotes) so that code-point offsets matter.
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
	return []fact{
		{fmt.Sprintf("What was %s's total revenue in fiscal %d?", c, year), rev,
			fmt.Sprintf("%s reported total revenue of %%s for fiscal %d.", c, year)},
		{fmt.Sprintf("How much net income did %s report for fiscal %d?", c, year), ni,
			"Net income for the year came to %s, after the charges described below."},
		{fmt.Sprintf("What were %s's capital expenditures in %d?", c, year), capex,
			fmt.Sprintf("Capital expenditures were %%s in %d, mostly for new equipment.", year)},
		{fmt.Sprintf("How much long-term debt did %s carry at year end?", c), debt,
			"Long-term debt stood at %s at year end."},
		{fmt.Sprintf("What quarterly dividend did %s declare?", c), div,
			"The board declared a quarterly dividend of %s."},
		{fmt.Sprintf("How many people does %s employ?", c), emp,
			"The company employs %s across its sites."},
		{fmt.Sprintf("What is %s's largest business segment?", c), seg,
			fmt.Sprintf("%s’s largest business segment is %%s.", c)},
		{fmt.Sprintf("Which firm audits %s's financial statements?", c), aud,
			"The financial statements were audited by %s."},
		{fmt.Sprintf("Where is %s headquartered?", c), city,
			fmt.Sprintf("%s is headquartered in %%s.", c)},
		{fmt.Sprintf("What operating margin did %s achieve in %d?", c, year), margin,
			fmt.Sprintf("The operating margin reached %%s in %d.", year)},
		{fmt.Sprintf("By how much did %s's revenue grow year over year?", c), growth,
			"Revenue grew %s year over year."},
		{fmt.Sprintf("In which month does %s's fiscal year end?", c), month,
			"The fiscal year ends in %s."},
		{fmt.Sprintf("How large is the share repurchase program %s authorized?", c), buyback,
			"The board also authorized a share repurchase program of %s."},
		{fmt.Sprintf("What was %s's effective tax rate?", c), tax,
			"The effective tax rate was %s."},
	}
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
	format := flag.String("format", "qa-text", "qa-text or squad")
	flag.Parse()
	switch *format {
	case "qa-text":
		fmt.Print(qaText())
	case "squad":
		os.Stdout.Write(squad())
	default:
		fmt.Fprintf(os.Stderr, "gensample: -format %q: want qa-text or squad\n", *format)
		os.Exit(2)
	}
}
