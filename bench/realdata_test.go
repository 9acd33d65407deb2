//go:build realdata

package bench

import (
	"testing"

	"github.com/loraqa/loraqa/internal/testutil"
)

// BenchmarkRealDataFeaturizeSQuAD: featurize over the first 500 questions of
// SQuAD v1.1 dev ($LORAQA_DATA; make test-data runs it once).
func BenchmarkRealDataFeaturizeSQuAD(b *testing.B) {
	featurize(b, testutil.RealData(b, "squad-v1.1-dev-part1.json"), 500)
}
