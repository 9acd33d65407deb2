package sweep

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
)

// bar is one trial in f1_per_trial.png.
type bar struct {
	label  string // the trial's number
	f1     float64
	status string
	best   bool
}

func (s *Sweep) plotBars(results []Result) []bar {
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Trial.Name] = r
	}
	bars := make([]bar, 0, len(s.Trials))
	for _, t := range s.Trials {
		r := byName[t.Name]
		bars = append(bars, bar{label: strconv.Itoa(t.Combo), f1: r.F1, status: r.Status, best: r.Rank == 1})
	}
	return bars
}

var (
	colBar    = color.RGBA{31, 119, 180, 255}
	colBest   = color.RGBA{255, 127, 14, 255}
	colFailed = color.RGBA{214, 39, 40, 255}
	colAxis   = color.RGBA{80, 80, 80, 255}
	colGrid   = color.RGBA{225, 225, 225, 255}
	colText   = color.RGBA{40, 40, 40, 255}
)

// plotF1 draws a bar per trial, in trial order: its best eval F1 (0 to 100,
// or to the best F1 rounded up when that is small), the best trial in orange,
// unfinished trials as a red stub. Bars are numbered by trial, and labelled
// with their F1 when there is room. Only the standard library is used.
func plotF1(bars []bar) ([]byte, error) {
	n := max(len(bars), 1)
	slot := min(60, max(6, 900/n))
	const left, right, top, bottom = 44, 16, 24, 28
	w := left + right + slot*n
	h := 360
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	plot := image.Rect(left, top, w-right, h-bottom)
	top100 := 0.0
	for _, b := range bars {
		if b.status == StatusDone {
			top100 = math.Max(top100, b.f1)
		}
	}
	// The y axis reaches the next multiple of 10 above the best F1.
	ymax := math.Min(100, math.Max(10, math.Ceil(top100/10)*10))
	step := 10.0
	if ymax > 50 {
		step = 20
	}
	y := func(v float64) int { return plot.Max.Y - int(math.Round(v/ymax*float64(plot.Dy()))) }
	for v := 0.0; v <= ymax+1e-9; v += step {
		yy := y(v)
		for x := plot.Min.X; x < plot.Max.X; x++ {
			img.Set(x, yy, colGrid)
		}
		txt := strconv.Itoa(int(v))
		drawText(img, plot.Min.X-6-textWidth(txt, 2), yy-5, txt, 2, colText)
	}
	for i, b := range bars {
		x0 := plot.Min.X + i*slot + max(1, slot/8)
		x1 := plot.Min.X + (i+1)*slot - max(1, slot/8)
		c, top := colBar, y(b.f1)
		switch {
		case b.status != StatusDone:
			c, top = colFailed, plot.Max.Y-3
		case b.best:
			c = colBest
		}
		fill(img, image.Rect(x0, top, x1, plot.Max.Y), c)
		if lw := textWidth(b.label, 1); lw <= slot {
			drawText(img, (x0+x1-lw)/2, plot.Max.Y+6, b.label, 1, colText)
		}
		if b.status == StatusDone {
			v := strconv.FormatFloat(b.f1, 'f', 1, 64)
			if lw := textWidth(v, 1); lw <= slot {
				drawText(img, (x0+x1-lw)/2, top-8, v, 1, colText)
			}
		}
	}
	for x := plot.Min.X; x <= plot.Max.X; x++ {
		img.Set(x, plot.Max.Y, colAxis)
	}
	for yy := plot.Min.Y; yy <= plot.Max.Y; yy++ {
		img.Set(plot.Min.X, yy, colAxis)
	}
	drawText(img, 4, 4, "F1", 2, colText)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.Set(x, yy, c)
		}
	}
}

// glyphs is a 3x5 pixel font for the characters the plot writes: each row is
// three bits, most significant on the left.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
	'F': {7, 4, 7, 4, 4},
}

func textWidth(s string, scale int) int { return len(s)*4*scale - scale }

func drawText(img *image.RGBA, x, y int, s string, scale int, c color.RGBA) {
	for i, ch := range s {
		g, ok := glyphs[ch]
		if !ok {
			continue
		}
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row]&(4>>col) == 0 {
					continue
				}
				px, py := x+i*4*scale+col*scale, y+row*scale
				fill(img, image.Rect(px, py, px+scale, py+scale), c)
			}
		}
	}
}
