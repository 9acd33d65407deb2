package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedSamples: examples/sample-qa.txt and testdata/squad-sample.json
// are what gensample writes (regenerate them with the commands in the package
// comment after changing it).
func TestCommittedSamples(t *testing.T) {
	for path, want := range map[string][]byte{
		filepath.Join("..", "..", "examples", "sample-qa.txt"):     []byte(qaText()),
		filepath.Join("..", "..", "testdata", "squad-sample.json"): squad(),
	} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is not what gensample writes now: regenerate it", path)
		}
	}
}
