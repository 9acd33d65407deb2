package sweep

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseGrid(t *testing.T) {
	g, err := ParseGrid([]string{"train.learning_rate=1e-4, 2e-4,5e-4", "lora.target_modules=[q_lin,v_lin],[q_lin,k_lin,v_lin]", "lora.r=8"})
	if err != nil {
		t.Fatal(err)
	}
	want := Grid{
		{Key: "train.learning_rate", Values: []string{"1e-4", "2e-4", "5e-4"}},
		{Key: "lora.target_modules", Values: []string{"[q_lin,v_lin]", "[q_lin,k_lin,v_lin]"}},
		{Key: "lora.r", Values: []string{"8"}},
	}
	if len(g) != len(want) {
		t.Fatalf("got %v", g)
	}
	for i := range want {
		if g[i].Key != want[i].Key || !slices.Equal(g[i].Values, want[i].Values) {
			t.Errorf("param %d = %v, want %v", i, g[i], want[i])
		}
	}
}

func TestParseGridErrors(t *testing.T) {
	for _, tc := range []struct {
		specs []string
		want  string
	}{
		{nil, "give at least one --grid"},
		{[]string{"lora.rank=4,8"}, `unknown config key "lora.rank"; did you mean "lora.r"?`},
		{[]string{"learning_rate=1e-4"}, `did you mean "train.learning_rate"?`},
		{[]string{"lora.r"}, "want section.key=value1,value2"},
		{[]string{"=4"}, "want section.key=value1,value2"},
		{[]string{"lora.r=4,8", "lora.r=16"}, "more than one --grid"},
		{[]string{"lora.r=4,,8"}, "empty value"},
		{[]string{"lora.r=4,8,4"}, `value "4" is listed twice`},
		{[]string{"lora.target_modules=[q_lin,v_lin"}, "unbalanced '['"},
		{[]string{"output_dir=a,b"}, "output_dir cannot be swept"},
		{[]string{"fine_tuned_adapter_path=a"}, "cannot be swept"},
	} {
		_, err := ParseGrid(tc.specs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseGrid(%q) = %v, want an error containing %q", tc.specs, err, tc.want)
			continue
		}
		var fe *FlagError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Flag, "--grid") {
			t.Errorf("ParseGrid(%q): error %v is not a --grid FlagError", tc.specs, err)
		}
	}
}

func TestGridExpansion(t *testing.T) {
	g, err := ParseGrid([]string{"train.learning_rate=1e-3,5e-4", "lora.r=4,8,16"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := g.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || g.Size(100) != 6 {
		t.Fatalf("got %d combinations, want 6", len(all))
	}
	var got []string
	for _, i := range all {
		got = append(got, strings.Join(g.Combination(i), " "))
	}
	want := []string{"1e-3 4", "1e-3 8", "1e-3 16", "5e-4 4", "5e-4 8", "5e-4 16"}
	if !slices.Equal(got, want) {
		t.Errorf("combinations %q, want %q (last key fastest)", got, want)
	}
	big, _ := ParseGrid([]string{"lora.r=1,2,3,4,5,6,7,8,9,10", "lora.alpha=1,2,3,4,5,6,7,8,9,10", "train.epochs=1,2,3,4,5,6,7,8,9,10", "train.batch_size=1,2,3,4,5,6,7,8,9,10,11"})
	if _, err := big.All(); err == nil || !strings.Contains(err.Error(), "--random") {
		t.Errorf("a grid of 11000 combinations: got %v, want an error suggesting --random", err)
	}
}

func TestRandomSampling(t *testing.T) {
	g, _ := ParseGrid([]string{"train.learning_rate=1e-5,2e-5,5e-5,1e-4,2e-4,5e-4", "lora.r=2,4,8,16,32", "lora.alpha=8,16,32"})
	a, err := g.Sample(7, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := g.Sample(7, 3)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different samples: %v, %v", a, b)
	}
	if len(a) != 7 || !slices.IsSorted(a) || len(slices.Compact(slices.Clone(a))) != 7 {
		t.Errorf("sample %v: want 7 distinct sorted indexes", a)
	}
	for _, i := range a {
		if i < 0 || i >= 90 {
			t.Errorf("index %d outside the grid of 90", i)
		}
	}
	c, _ := g.Sample(7, 4)
	if slices.Equal(a, c) {
		t.Errorf("seeds 3 and 4 drew the same sample %v", a)
	}
	// Raising N keeps the trials already drawn (so a resumed sweep reuses them).
	more, _ := g.Sample(10, 3)
	for _, i := range a {
		if !slices.Contains(more, i) {
			t.Errorf("sample of 10 %v lacks %d from the sample of 7 %v", more, i, a)
		}
	}
	all, _ := g.Sample(500, 3)
	if len(all) != 90 {
		t.Errorf("N above the grid size: got %d trials, want all 90", len(all))
	}
	if _, err := g.Sample(0, 1); err == nil {
		t.Error("Sample(0) succeeded")
	}
	// A grid too large to permute is sampled by rejection, as deterministically.
	huge, _ := ParseGrid([]string{
		"lora.r=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
		"lora.alpha=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
		"train.epochs=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20",
		"train.batch_size=1,2,3,4,5,6,7,8,9,10",
	})
	h1, _ := huge.Sample(20, 9)
	h2, _ := huge.Sample(20, 9)
	h3, _ := huge.Sample(25, 9)
	if !slices.Equal(h1, h2) || len(h1) != 20 || len(slices.Compact(slices.Clone(h1))) != 20 {
		t.Errorf("large grid samples %v / %v", h1, h2)
	}
	for _, i := range h1 {
		if !slices.Contains(h3, i) || i >= 80000 {
			t.Errorf("large grid: %d missing from the larger sample or out of range", i)
		}
	}
}
