package train_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/train"
)

// TestNaNPolicy: with a learning rate of 1e30 the first update blows the
// adapter up and every later batch has a non-finite loss or gradient norm.
// nan_policy stop ends the run at the first one; skip drops each of those
// steps with a warning and finishes, every batch being either a step or a
// skipped one.
func TestNaNPolicy(t *testing.T) {
	warning := regexp.MustCompile(`^warning: (loss|gradient norm) is (NaN|\+Inf|-Inf) at step \d+: step skipped`)
	cases := []struct {
		policy  string
		wantErr string // regexp; "" = the run finishes
	}{
		{"stop", `^(loss|gradient norm) is (NaN|\+Inf|-Inf) at step 2\b.*: stopping; the last good checkpoint is ""`},
		{"skip", ""},
	}
	for _, c := range cases {
		t.Run(c.policy, func(t *testing.T) {
			m, a := tinyModel(t, gotch.Float)
			o := train.DefaultOptions()
			o.Epochs, o.BatchSize, o.LR, o.MaxGradNorm, o.NaNPolicy = 2, 2, 1e30, 0, c.policy
			var skipped int
			o.Logf = func(format string, args ...any) {
				if warning.MatchString(fmt.Sprintf(format, args...)) {
					skipped++
				}
			}
			tr := &train.Trainer{Model: m, Adapter: a, Train: syntheticFeatures(8, 16, m.Config.VocabSize, 6), Opt: o}
			defer tr.Close()
			st, err := tr.Run(context.Background())
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Regexp(t, c.wantErr, err.Error())
				assert.Zero(t, skipped)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, int64(1), st.GlobalStep, "only the first update was finite")
			assert.Equal(t, tr.TotalSteps(), st.GlobalStep+int64(skipped), "every other batch was skipped with a warning")
			assert.Equal(t, 2, st.Epoch)
		})
	}
}
