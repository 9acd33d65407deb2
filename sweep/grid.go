package sweep

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/loraqa/loraqa/config"
)

// Param is one swept config key and the values it takes, in the order given.
type Param struct {
	Key    string
	Values []string
}

// Grid is the swept keys in the order of their --grid flags. A combination's
// index counts with the last key varying fastest, as nested loops would.
type Grid []Param

// MaxTrials bounds the number of trials of one sweep (a grid larger than this
// must be sampled with --random).
const MaxTrials = 10000

// reserved are the keys the sweep sets itself for every trial.
var reserved = map[string]string{
	"output_dir":              "each trial's run directory is DIR/trial-NNN/run",
	"fine_tuned_adapter_path": "each trial's adapter goes to DIR/trial-NNN/adapter",
}

// ParseGrid parses "key=v1,v2,..." specs. Keys must be config keys (an
// unknown key suggests the nearest one) and appear once; values are split on
// commas outside brackets, so a list value is written "[a,b]".
func ParseGrid(specs []string) (Grid, error) {
	if len(specs) == 0 {
		return nil, &FlagError{Flag: "--grid", Err: fmt.Errorf("give at least one --grid key=v1,v2,... (e.g. --grid train.learning_rate=1e-4,2e-4)")}
	}
	known := config.Keys()
	var g Grid
	seen := map[string]bool{}
	for _, spec := range specs {
		bad := func(format string, a ...any) error {
			return &FlagError{Flag: fmt.Sprintf("--grid %q", spec), Err: fmt.Errorf(format, a...)}
		}
		key, vals, ok := strings.Cut(spec, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, bad("want section.key=value1,value2,... (e.g. lora.r=8,16)")
		}
		if !slices.Contains(known, key) {
			hint := ""
			if s, ok := nearestKey(key, known); ok {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			return nil, bad("unknown config key %q%s (`loraqa config show` prints every key)", key, hint)
		}
		if why, ok := reserved[key]; ok {
			return nil, bad("%s cannot be swept: %s", key, why)
		}
		if seen[key] {
			return nil, bad("key %q is given in more than one --grid; list all its values in one", key)
		}
		seen[key] = true
		values, err := splitValues(vals)
		if err != nil {
			return nil, bad("%v", err)
		}
		dup := map[string]bool{}
		for _, v := range values {
			if strings.TrimSpace(v) == "" {
				return nil, bad("empty value (values are separated by commas; a list value is written in brackets, [a,b])")
			}
			if dup[v] {
				return nil, bad("value %q is listed twice", v)
			}
			dup[v] = true
		}
		g = append(g, Param{Key: key, Values: values})
	}
	return g, nil
}

// splitValues splits s on commas that are not inside brackets.
func splitValues(s string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced ']' at byte %d", i)
			}
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced '['")
	}
	return append(out, strings.TrimSpace(s[start:])), nil
}

// Keys returns the swept keys in order.
func (g Grid) Keys() []string {
	keys := make([]string, len(g))
	for i, p := range g {
		keys[i] = p.Key
	}
	return keys
}

// Size is the number of combinations, or -1 when it exceeds limit.
func (g Grid) Size(limit int) int {
	n := 1
	for _, p := range g {
		if len(p.Values) == 0 {
			return 0
		}
		if n > limit/len(p.Values) {
			return -1
		}
		n *= len(p.Values)
	}
	return n
}

// Combination returns the values of combination i (last key fastest).
func (g Grid) Combination(i int) []string {
	vals := make([]string, len(g))
	for k := len(g) - 1; k >= 0; k-- {
		n := len(g[k].Values)
		vals[k] = g[k].Values[i%n]
		i /= n
	}
	return vals
}

// All lists every combination index in order.
func (g Grid) All() ([]int, error) {
	n := g.Size(MaxTrials)
	if n < 0 {
		return nil, &FlagError{Flag: "--grid", Err: fmt.Errorf("the grid has more than %d combinations; sample it with --random N", MaxTrials)}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx, nil
}

// permLimit is the largest grid sampled with a full permutation; larger ones
// are sampled by rejection. Either way the first N of a seed's draws do not
// depend on N, so raising --random keeps the trials already drawn.
const permLimit = 1 << 16

// Sample draws n distinct combination indexes, determined by seed and the
// grid's size, returned in ascending order. When n covers the grid, every
// combination is returned.
func (g Grid) Sample(n int, seed uint64) ([]int, error) {
	if n <= 0 {
		return nil, &FlagError{Flag: "--random", Err: fmt.Errorf("want a number of trials > 0, got %d", n)}
	}
	if n > MaxTrials {
		return nil, &FlagError{Flag: "--random", Err: fmt.Errorf("%d trials is more than the limit of %d", n, MaxTrials)}
	}
	const bigLimit = 1 << 40
	size := g.Size(bigLimit)
	if size < 0 {
		return nil, &FlagError{Flag: "--grid", Err: fmt.Errorf("the grid has more than 2^40 combinations")}
	}
	if n >= size {
		return g.All()
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var picked []int
	if size <= permLimit {
		picked = append(picked, r.Perm(size)[:n]...)
	} else {
		seen := map[int]bool{}
		for len(picked) < n {
			i := r.IntN(size)
			if !seen[i] {
				seen[i] = true
				picked = append(picked, i)
			}
		}
	}
	sort.Ints(picked)
	return picked, nil
}

// nearestKey returns the known key closest to key by edit distance, or a key
// with the same last part in another section; ok is false when none is close.
func nearestKey(key string, known []string) (string, bool) {
	last := func(s string) string { return s[strings.LastIndex(s, ".")+1:] }
	best, bestScore := "", -1
	for _, k := range known {
		score := config.Levenshtein(key, k)
		if last(k) == last(key) {
			score = min(score, 1)
		}
		if bestScore < 0 || score < bestScore {
			best, bestScore = k, score
		}
	}
	return best, bestScore >= 0 && bestScore <= max(3, len(key)/3)
}
