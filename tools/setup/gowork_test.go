package main

import (
	"strings"
	"testing"
)

// TestGoWork: the default go.work names the module as "." and the copy as
// ./.build/gotch (as before -gowork existed); a go.work elsewhere names both
// relative to its own directory, as go resolves them.
func TestGoWork(t *testing.T) {
	for _, c := range []struct{ path, dst, use, rep string }{
		{"go.work", ".build/gotch", "use .\n", "=> ./.build/gotch\n"},
		{".build/gpu/go.work", ".build/gpu/gotch", "use ../..\n", "=> ./gotch\n"},
		{".build/gpu/go.work", ".build/gotch", "use ../..\n", "=> ../gotch\n"},
	} {
		w, err := goWork(c.path, c.dst, "/lib")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(w, c.use) || !strings.HasSuffix(w, c.rep) {
			t.Errorf("goWork(%q, %q) = %q: want %q and %q", c.path, c.dst, w, c.use, c.rep)
		}
	}
}
