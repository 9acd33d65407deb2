package train_test

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/train"
)

// countColour counts the pixels of img in r that are exactly c.
func countColour(img image.Image, r image.Rectangle, c color.RGBA) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == c {
				n++
			}
		}
	}
	return n
}

func TestPlotCurves(t *testing.T) {
	blue, red, green := color.RGBA{31, 119, 180, 255}, color.RGBA{214, 39, 40, 255}, color.RGBA{44, 160, 44, 255}
	left, right := image.Rect(0, 0, 480, 400), image.Rect(480, 0, 960, 400)
	cases := []struct {
		name    string
		metrics string
		// pixels of each colour expected in the left and right panels (>0 or 0)
		leftBlue, rightRed, rightGreen bool
	}{
		{"train and eval", `{"type":"train","step":1,"loss":2.5}
{"type":"train","step":2,"loss":1.5}
not json
{"type":"eval","step":1,"eval_loss":1.7,"f1":40}
{"type":"eval","step":2,"eval_loss":1.0,"f1":60}
`, true, true, true},
		{"train only", `{"type":"train","step":1,"loss":2.5}` + "\n", true, false, false},
		{"empty", "", false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(c.metrics), 0o644))
			require.NoError(t, train.PlotCurves(dir))
			f, err := os.Open(filepath.Join(dir, "training_curve.png"))
			require.NoError(t, err)
			defer f.Close()
			img, err := png.Decode(f)
			require.NoError(t, err)
			assert.Equal(t, image.Rect(0, 0, 960, 400), img.Bounds())
			assert.Equal(t, c.leftBlue, countColour(img, left, blue) > 0, "training loss, left")
			assert.Zero(t, countColour(img, right, blue), "no training loss on the right")
			assert.Equal(t, c.rightRed, countColour(img, right, red) > 0, "eval loss, right")
			assert.Equal(t, c.rightGreen, countColour(img, right, green) > 0, "eval F1, right")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 2, "metrics.jsonl and training_curve.png, no temporary file")
		})
	}
}

func TestPlotCurvesWithoutMetrics(t *testing.T) {
	dir := t.TempDir()
	require.Error(t, train.PlotCurves(dir))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no picture and no temporary file")
}
