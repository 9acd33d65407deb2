package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
)

// runInputs makes n requests: questions from the file's "Q:" lines, contexts
// cut from the whole text with lengths from 40 characters to maxLen, top_k
// 1 to 3, adapters in turn (an empty name leaves the field out: the default).
func runInputs(args []string) error {
	fs := flag.NewFlagSet("inputs", flag.ContinueOnError)
	dataFile := fs.String("data", "", "Q:/A: text file (e.g. tatqa-dev-qa.txt)")
	n := fs.Int("n", 64, "number of distinct requests")
	adapters := fs.String("adapters", "", "comma-separated adapter names to use in turn (an empty item: no adapter field)")
	maxLen := fs.Int("max-len", 6000, "longest context in characters")
	seed := fs.Uint64("seed", 1, "random seed")
	out := fs.String("o", "inputs.jsonl", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataFile == "" || *n < 1 || *maxLen < 40 {
		return fmt.Errorf("inputs: need -data, -n >= 1 and -max-len >= 40")
	}
	b, err := os.ReadFile(*dataFile)
	if err != nil {
		return err
	}
	text := []rune(strings.ToValidUTF8(string(b), ""))
	var questions []string
	for _, line := range strings.Split(string(b), "\n") {
		if q, ok := strings.CutPrefix(line, "Q: "); ok && strings.TrimSpace(q) != "" {
			questions = append(questions, strings.TrimSpace(q))
		}
	}
	if len(questions) == 0 || len(text) < *maxLen {
		return fmt.Errorf("inputs: %s has no \"Q: \" lines or fewer than %d characters", *dataFile, *maxLen)
	}
	names := strings.Split(*adapters, ",")
	r := rand.New(rand.NewPCG(*seed, 7))
	ins := make([]input, *n)
	for i := range ins {
		// Lengths spread on a log scale: many short contexts, some long ones.
		l := int(40 * math.Pow(float64(*maxLen)/40, r.Float64()))
		off := r.IntN(len(text) - l)
		ins[i] = input{
			Question: questions[r.IntN(len(questions))],
			Context:  string(text[off : off+l]),
			Adapter:  names[i%len(names)],
			TopK:     1 + i%3,
		}
	}
	return writeJSONL(*out, ins)
}
