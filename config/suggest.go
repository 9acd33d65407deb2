package config

import (
	"fmt"
	"strings"
)

// Levenshtein is the edit distance between a and b, in bytes.
func Levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lastPart returns what follows the last sep in s.
func lastPart(s, sep string) string {
	return s[strings.LastIndex(s, sep)+len(sep):]
}

// nearest returns the candidate closest to name, scoring a candidate whose
// last part (after sep) equals name's last part as a near miss, so a key in
// the wrong section finds its right one. ok is false when nothing is close.
func nearest(name string, candidates []string, sep string) (best string, ok bool) {
	bestScore := -1
	for _, c := range candidates {
		score := Levenshtein(name, c)
		if sep != "" && lastPart(name, sep) == lastPart(c, sep) {
			score = min(score, 1)
		}
		if bestScore < 0 || score < bestScore {
			best, bestScore = c, score
		}
	}
	return best, bestScore >= 0 && bestScore <= max(3, len(name)/3)
}

// unknownKey builds the error for an unknown dotted key.
func unknownKey(where, key string) error {
	hint := ""
	if s, ok := nearest(key, Keys(), "."); ok {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	return errorf(ErrUnknownKey, "%s: unknown key %q%s", where, key, hint)
}
