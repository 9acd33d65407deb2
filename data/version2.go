package data

import (
	"fmt"
	"strings"
)

// Settings of HF's version_2_with_negative (config data.version_2_with_negative).
const (
	// Version2Auto turns SQuAD 2.0 handling on exactly when some question
	// has no gold answer.
	Version2Auto = "auto"
	Version2On   = "true"
	Version2Off  = "false"
)

// CountUnanswerable is the number of examples without a gold answer.
func CountUnanswerable(examples []Example) int {
	n := 0
	for i := range examples {
		if !examples[i].HasAnswer() {
			n++
		}
	}
	return n
}

// ResolveVersion2 decides HF's version_2_with_negative for a run from the
// setting ("auto", "" meaning auto, "true" or "false") and all its examples
// (training and evaluation sets). Auto is on exactly when some example has
// no gold answer. note is a line for the user (empty when there is nothing
// to say): auto turning it on, "true" on data where every question has an
// answer, or "false" on data with unanswerable questions — they are still
// trained on at [CLS], as HF does, but no prediction is ever "", so they
// score 0. An unknown setting is an error naming the key.
func ResolveVersion2(setting string, sets ...[]Example) (on bool, note string, err error) {
	n, none := 0, 0
	for _, s := range sets {
		n += len(s)
		none += CountUnanswerable(s)
	}
	const key = "data.version_2_with_negative"
	which := fmt.Sprintf("%d of %d questions have no answer", none, n)
	switch strings.ToLower(strings.TrimSpace(setting)) {
	case "", Version2Auto:
		if none == 0 {
			return false, "", nil
		}
		return true, fmt.Sprintf("%s: on (auto): %s (SQuAD 2.0): they are trained to point at [CLS], "+
			"and a question is answered \"\" when its null score beats its best span's by more than data.null_score_diff_threshold", key, which), nil
	case Version2On:
		if none == 0 {
			return true, fmt.Sprintf("%s: on, but every question has an answer: a question may still be answered \"\"", key), nil
		}
		return true, "", nil
	case Version2Off:
		if none == 0 {
			return false, "", nil
		}
		return false, fmt.Sprintf("%s: off, but %s: they are trained to point at [CLS], "+
			"yet every prediction is a span, so they score 0 (set it to auto or true for SQuAD 2.0)", key, which), nil
	}
	return false, "", fmt.Errorf("%s: %q is not auto, true or false", key, setting)
}
