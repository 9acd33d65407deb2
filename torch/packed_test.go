package torch

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func BenchmarkPackedLinear(b *testing.B) {
	if err := PackedLinearAvailable(); err != nil {
		b.Skip(err)
	}
	SetThreads(2)
	r := rand.New(rand.NewSource(1))
	for _, dt := range []gotch.DType{gotch.Float, gotch.BFloat16} {
		for _, sh := range [][3]int64{{384, 768, 768}, {384, 3072, 768}, {384, 768, 3072}, {199, 768, 768}} {
			m, out, in := sh[0], sh[1], sh[2]
			w, _ := FromFloat32(normals(r, int(out*in), 0.05), []int64{out, in}, gotch.Float, gotch.CPU)
			x, _ := FromFloat32(normals(r, int(m*in), 1), []int64{1, m, in}, gotch.Float, gotch.CPU)
			bias, _ := FromFloat32(normals(r, int(out), 0.1), []int64{out}, gotch.Float, gotch.CPU)
			w, x, bias = w.MustTotype(dt, true), x.MustTotype(dt, true), bias.MustTotype(dt, true)
			p, err := PackLinearWeight(w)
			require.NoError(b, err)
			name := fmt.Sprintf("%s/%dx%dx%d", DTypeName(dt), m, out, in)
			b.Run(name+"/linear", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					ts.MustLinear(x, w, bias).MustDrop()
				}
			})
			b.Run(name+"/packed", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					PackedLinear(x, p, bias).MustDrop()
				}
			})
			y1 := ts.MustLinear(x, w, bias)
			y2 := PackedLinear(x, p, bias)
			d := y1.MustSub(y2, false).MustAbs(true).MustMax(true).MustTotype(gotch.Float, true)
			b.Logf("%s max |Δ| %.3g", name, ToFloat32(d)[0])
			for _, t := range []*ts.Tensor{w, x, bias, p, y1, y2, d} {
				t.MustDrop()
			}
		}
	}
}
