package config

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzLoadYAML feeds arbitrary file contents to the loader: it must never
// panic, every error must name the file, and an accepted config must be
// valid and survive a YAML round trip unchanged.
func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte("train: {epochs: 3}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := withEnv("fuzz.yaml", nil)
		cfg, err := load(opts, data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted an invalid config: %v", err)
		}
		out, err := cfg.YAML()
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		back, err := load(opts, out)
		if err != nil {
			t.Fatalf("reloading YAML output: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("round trip changed the config:\n%s", out)
		}
	})
}
