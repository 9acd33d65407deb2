// Command loadtest drives `loraqa serve` and checks its answers against
// `loraqa predict`.
//
//	loadtest inputs -data FILE -n 64 -adapters a,b -o inputs.jsonl
//	loadtest expect -inputs inputs.jsonl -loraqa bin/loraqa -adapter a=DIR -adapter b=DIR -o expected.jsonl -- --model M ...
//	loadtest run -url http://127.0.0.1:8080 -inputs inputs.jsonl -expected expected.jsonl -n 2000 -c 16 -pid PID
//	loadtest hostile -url http://127.0.0.1:8080 -inputs inputs.jsonl -expected expected.jsonl -token T -admin-token A -adapter-path DIR -pid PID -duration 60s
//
// inputs cuts questions and contexts of many lengths (one window to dozens)
// out of a Q:/A: text file; expect runs `loraqa predict` once per input;
// run fires n requests from c concurrent clients, compares every answer
// byte for byte with the expected one, and reports errors, latency
// percentiles, throughput and the server's RSS after 1,000 and 10,000 requests.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// input is one request body.
type input struct {
	Question string `json:"question"`
	Context  string `json:"context"`
	Adapter  string `json:"adapter,omitempty"`
	TopK     int    `json:"top_k,omitempty"`
}

// expected is the answer list predict printed for an input, and the adapter
// that should answer.
type expected struct {
	Adapter string          `json:"adapter"`
	Answers json.RawMessage `json:"answers"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadtest inputs|expect|run|hostile [flags] (see -h of each)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "inputs":
		err = runInputs(os.Args[2:])
	case "expect":
		err = runExpect(os.Args[2:])
	case "run":
		err = runLoad(os.Args[2:])
	case "hostile":
		err = runHostile(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want inputs, expect, run or hostile", os.Args[1])
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(1)
	}
}

// readJSONL decodes one value per line of path into a slice of T.
func readJSONL[T any](path string) ([]T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// writeJSONL writes one compact JSON value per line, HTML characters unescaped
// (as loraqa prints them).
func writeJSONL[T any](path string, vs []T) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
