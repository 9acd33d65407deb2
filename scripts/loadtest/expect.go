package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// runExpect runs `loraqa predict` once per input and writes its answers.
func runExpect(args []string) error {
	fs := flag.NewFlagSet("expect", flag.ContinueOnError)
	inputs := fs.String("inputs", "inputs.jsonl", "requests made by `loadtest inputs`")
	loraqa := fs.String("loraqa", "bin/loraqa", "the loraqa binary")
	var adapters stringList
	fs.Var(&adapters, "adapter", "NAME=DIR as given to serve (repeatable; the first is the default)")
	out := fs.String("o", "expected.jsonl", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	extra := fs.Args() // predict flags: --model, --max-seq-length, --device ...
	dirs := map[string]string{}
	def := ""
	for i, a := range adapters {
		name, dir, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("expect: -adapter %q: want NAME=DIR", a)
		}
		dirs[name] = dir
		if i == 0 {
			def = name
		}
	}
	ins, err := readJSONL[input](*inputs)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "loadtest-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	exp := make([]expected, len(ins))
	for i, in := range ins {
		name := in.Adapter
		if name == "" {
			name = def
		}
		k := max(in.TopK, 1)
		ctxFile := filepath.Join(tmp, "context.txt")
		if err := os.WriteFile(ctxFile, []byte(in.Context), 0o644); err != nil {
			return err
		}
		cmdArgs := []string{"predict", "--question", in.Question, "--context-file", ctxFile, "--top-k", fmt.Sprint(k)}
		if name != "" {
			dir, ok := dirs[name]
			if !ok {
				return fmt.Errorf("expect: input %d names adapter %q, which no -adapter gives", i, name)
			}
			cmdArgs = append(cmdArgs, "--adapter", dir)
		}
		cmd := exec.Command(*loraqa, append(cmdArgs, extra...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("expect: input %d: %s: %w: %s", i, *loraqa, err, stderr.String())
		}
		b = bytes.TrimSpace(b)
		if len(b) > 0 && b[0] == '{' { // --top-k 1 prints one answer, not a list
			b = append(append([]byte("["), b...), ']')
		}
		if !json.Valid(b) {
			return fmt.Errorf("expect: input %d: predict printed %q", i, b)
		}
		exp[i] = expected{Adapter: name, Answers: b}
		fmt.Fprintf(os.Stderr, "\rpredict %d/%d", i+1, len(ins))
	}
	fmt.Fprintln(os.Stderr)
	return writeJSONL(*out, exp)
}
