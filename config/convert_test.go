package config

import (
	"math"
	"testing"
)

// TestToInt: every integer type, integral floats, and nothing out of int64's range.
func TestToInt(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int64
		ok   bool
	}{
		{int(-3), -3, true}, {int8(-8), -8, true}, {int16(16), 16, true}, {int32(-32), -32, true},
		{int64(math.MinInt64), math.MinInt64, true},
		{uint(7), 7, true}, {uint8(255), 255, true}, {uint16(16), 16, true}, {uint32(32), 32, true},
		{uint64(math.MaxInt64), math.MaxInt64, true}, {uint64(math.MaxInt64 + 1), 0, false},
		{uint(math.MaxUint), 0, false},
		{2.0, 2, true}, {-1e15, -1e15, true}, {2.5, 0, false}, {float64(1 << 53), 0, false},
		{float32(2), 0, false}, {"2", 0, false}, {true, 0, false}, {nil, 0, false},
	} {
		got, ok := toInt(c.v)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("toInt(%T %v) = %d, %v; want %d, %v", c.v, c.v, got, ok, c.want, c.ok)
		}
	}
}
