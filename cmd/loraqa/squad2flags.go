package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/engine"
)

// squad2Flags are --version-2-with-negative and --null-score-diff-threshold
// of predict, eval and serve: SQuAD 2.0 post-processing (the null answer ""
// competing with the spans) and the threshold it abstains by. Unset, each
// adapter answers as it was trained (peft.SQuAD2File, written by train).
type squad2Flags struct {
	version2  string
	threshold optionalFloat
}

func (s *squad2Flags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.version2, "version-2-with-negative", data.Version2Auto,
		"SQuAD 2.0: a question may be answered \"\" (no answer): true, false, or auto (each adapter as it was trained; eval: also on when the data has unanswerable questions)")
	fs.Var(&s.threshold, "null-score-diff-threshold",
		"with SQuAD 2.0, answer \"\" when the null score beats the best span's by more than this (default: the adapter's saved threshold, else 0)")
}

// apply sets the engine options the flags give; anyUnanswerable is whether
// the data has questions without an answer (eval; false elsewhere), which
// turns SQuAD 2.0 on under auto.
func (s *squad2Flags) apply(o *engine.Options, anyUnanswerable bool) error {
	switch strings.ToLower(strings.TrimSpace(s.version2)) {
	case data.Version2Auto, "":
		if anyUnanswerable {
			o.Version2WithNegative = ptr(true)
		}
	case data.Version2On:
		o.Version2WithNegative = ptr(true)
	case data.Version2Off:
		o.Version2WithNegative = ptr(false)
	default:
		return usagef("--version-2-with-negative %q: want auto, true or false", s.version2)
	}
	if s.threshold.set {
		o.NullScoreDiffThreshold = ptr(s.threshold.v)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// optionalFloat is a float flag that knows whether it was given.
type optionalFloat struct {
	v   float64
	set bool
}

func (f *optionalFloat) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatFloat(f.v, 'g', -1, 64)
}

func (f *optionalFloat) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(v) {
		return fmt.Errorf("%q: give a number, not NaN", s)
	}
	f.v, f.set = v, true
	return nil
}
