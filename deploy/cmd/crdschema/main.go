// Command crdschema derives the test data that deploy's tests validate the
// InferenceService manifest with: the openAPIV3Schema of KServe's published
// InferenceService CRD (v1beta1), pruned (deploy.Prune) to the fields the
// manifests set. Run it from deploy/ after changing k8s/inferenceservice.yaml:
//
//	go run ./cmd/crdschema [-kserve v0.20.0] [-crd FILE]
//
// Without -crd it reads config/crd/full/serving.kserve.io_inferenceservices.yaml
// of the Go module github.com/kserve/kserve at -kserve, downloaded with
// `go mod download`.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/loraqa/loraqa/deploy"
)

const crdPath = "config/crd/full/serving.kserve.io_inferenceservices.yaml"

func main() {
	version := flag.String("kserve", "v0.20.0", "the KServe release whose CRD to read")
	crd := flag.String("crd", "", "the CRD file (default: the one of github.com/kserve/kserve@-kserve)")
	manifest := flag.String("manifest", "k8s/inferenceservice.yaml", "the InferenceService manifest")
	out := flag.String("o", "testdata/kserve-inferenceservice-v1beta1.schema.json", "where to write the derived schema")
	flag.Parse()
	if err := run(*version, *crd, *manifest, *out); err != nil {
		fmt.Fprintln(os.Stderr, "crdschema:", err)
		os.Exit(1)
	}
}

func run(version, crd, manifest, out string) error {
	source := "file " + crd
	if crd == "" {
		dir, err := moduleDir("github.com/kserve/kserve@" + version)
		if err != nil {
			return err
		}
		crd, source = filepath.Join(dir, crdPath), "github.com/kserve/kserve@"+version+" "+crdPath
	}
	raw, err := os.ReadFile(crd)
	if err != nil {
		return fmt.Errorf("reading the CRD: %w", err)
	}
	var doc struct {
		Spec struct {
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", crd, err)
	}
	var schema map[string]any
	for _, v := range doc.Spec.Versions {
		if v.Name == "v1beta1" {
			schema = v.Schema.OpenAPIV3Schema
		}
	}
	if schema == nil || doc.Spec.Names.Kind != "InferenceService" {
		return fmt.Errorf("%s: no v1beta1 schema of InferenceService", crd)
	}
	mb, err := os.ReadFile(manifest)
	if err != nil {
		return err
	}
	var obj any
	if err := yaml.Unmarshal(mb, &obj); err != nil {
		return fmt.Errorf("%s: %w", manifest, err)
	}
	sum := sha256.Sum256(raw)
	res := map[string]any{
		"source":          source,
		"sha256":          hex.EncodeToString(sum[:]),
		"version":         "v1beta1",
		"derivation":      "deploy.Prune of the openAPIV3Schema with " + filepath.ToSlash(manifest) + " (go run ./cmd/crdschema)",
		"openAPIV3Schema": deploy.Prune(schema, []any{obj}),
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", " ")
	if err := enc.Encode(res); err != nil {
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// moduleDir downloads a module version and returns its directory.
func moduleDir(modVersion string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	o, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(o, &info); jerr != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %v %s", modVersion, err, info.Error)
	}
	return info.Dir, nil
}
