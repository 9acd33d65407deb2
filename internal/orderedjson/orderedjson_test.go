package orderedjson

import (
	"math"
	"testing"
)

func TestMarshal(t *testing.T) {
	type kv struct {
		k string
		v any
	}
	marshal := func(kvs []kv) ([]byte, error) {
		return Marshal(len(kvs), func(i int) (string, any) { return kvs[i].k, kvs[i].v })
	}
	for _, tc := range []struct {
		kvs  []kv
		want string
	}{
		{nil, `{}`},
		{[]kv{{"z", 1}, {"a", "x"}, {"m", []int{2}}}, `{"z":1,"a":"x","m":[2]}`},
		{[]kv{{"q\"<", 0.5}}, `{"q\"\u003c":0.5}`},
	} {
		b, err := marshal(tc.kvs)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.kvs, b, err, tc.want)
		}
	}
	if _, err := marshal([]kv{{"ok", 1}, {"f1", math.NaN()}}); err == nil || err.Error() != "f1: json: unsupported value: NaN" {
		t.Errorf("NaN: err %v, want one that names f1", err)
	}
}
