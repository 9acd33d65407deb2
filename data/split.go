package data

import (
	"fmt"
	"math"
	"sort"
)

// DefaultTestFraction and DefaultSeed are the defaults of prepare.
const (
	DefaultTestFraction = 0.1
	DefaultSeed         = 42
)

// TestSize is the number of test examples for n examples: ceil(n·fraction),
// as HF datasets' train_test_split counts it.
func TestSize(n int, fraction float64) int {
	return int(math.Ceil(float64(n)*fraction - 1e-9))
}

// Split divides examples into a train and a test set, deterministically for a
// seed. The test set has TestSize(len(examples), testFraction) examples; both
// keep the input order.
func Split(examples []Example, testFraction float64, seed uint64) (train, test []Example, err error) {
	if math.IsNaN(testFraction) || testFraction < 0 || testFraction >= 1 {
		return nil, nil, fmt.Errorf("split: test fraction %v is not in [0, 1)", testFraction)
	}
	n := len(examples)
	nTest := TestSize(n, testFraction)
	if testFraction > 0 && (nTest == 0 || nTest == n) {
		return nil, nil, fmt.Errorf("split: %d examples are too few for a test fraction of %v", n, testFraction)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	newRNG(seed, 0).shuffle(idx)
	testIdx := idx[:nTest]
	sort.Ints(testIdx)
	inTest := make([]bool, n)
	for _, i := range testIdx {
		inTest[i] = true
		test = append(test, examples[i])
	}
	for i, e := range examples {
		if !inTest[i] {
			train = append(train, e)
		}
	}
	return train, test, nil
}
