package train

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"path/filepath"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// PlotCurves draws dir/metrics.jsonl into dir/training_curve.png: the training
// loss by step on the left panel (blue), eval loss (red) and eval F1 / 100
// (green) by step on the right one. It writes through internal/atomicfile.
func PlotCurves(dir string) error {
	recs, err := ReadMetrics(dir)
	if err != nil {
		return err
	}
	var trainPts, evalLoss, evalF1 [][2]float64
	for _, r := range recs {
		step := float64(r.Step)
		switch r.Type {
		case "train":
			trainPts = append(trainPts, [2]float64{step, r.Loss})
		case "eval":
			evalLoss = append(evalLoss, [2]float64{step, r.EvalLoss})
			evalF1 = append(evalF1, [2]float64{step, r.F1 / 100})
		}
	}
	const w, h = 960, 400
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	left := image.Rect(40, 20, w/2-20, h-30)
	right := image.Rect(w/2+40, 20, w-20, h-30)
	for _, r := range []image.Rectangle{left, right} {
		axes(img, r)
	}
	plotLine(img, left, trainPts, color.RGBA{31, 119, 180, 255})
	plotLine(img, right, evalLoss, color.RGBA{214, 39, 40, 255})
	plotLine(img, right, evalF1, color.RGBA{44, 160, 44, 255})
	out := filepath.Join(dir, "training_curve.png")
	return atomicfile.WriteFunc(out, func(w io.Writer) error { return png.Encode(w, img) })
}

func axes(img *image.RGBA, r image.Rectangle) {
	gray := color.RGBA{80, 80, 80, 255}
	for x := r.Min.X; x <= r.Max.X; x++ {
		img.Set(x, r.Max.Y, gray)
	}
	for y := r.Min.Y; y <= r.Max.Y; y++ {
		img.Set(r.Min.X, y, gray)
	}
}

// plotLine scales pts into r (x by step, y from 0 to the largest value) and
// joins them; each point is marked with a small square.
func plotLine(img *image.RGBA, r image.Rectangle, pts [][2]float64, c color.RGBA) {
	if len(pts) == 0 {
		return
	}
	maxX, maxY := 1.0, 1e-9
	for _, p := range pts {
		maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
	}
	at := func(p [2]float64) (int, int) {
		x := r.Min.X + int(p[0]/maxX*float64(r.Dx()))
		y := r.Max.Y - int(p[1]/maxY*float64(r.Dy()))
		return x, y
	}
	px, py := at(pts[0])
	for _, p := range pts {
		x, y := at(p)
		steps := max(abs(x-px), abs(y-py), 1)
		for i := 0; i <= steps; i++ {
			img.Set(px+(x-px)*i/steps, py+(y-py)*i/steps, c)
		}
		for dx := -1; dx <= 1; dx++ {
			for dy := -1; dy <= 1; dy++ {
				img.Set(x+dx, y+dy, c)
			}
		}
		px, py = x, y
	}
}

func abs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}
