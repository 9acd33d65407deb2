package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gotch v0.9.1's newTensor, as far as recordInScopes reads it.
const newTensorV091 = `func newTensor(ctensor lib.Ctensor, nameOpt ...string) *Tensor {
	lock.Lock()
	name := newName(nameOpt...)
	if _, ok := ExistingTensors[name]; ok {
		name = fmt.Sprintf("%s_%09d", name, TensorCount)
	}
	ExistingTensors[name] = struct{}{}
	lock.Unlock()
	x.name = name
`

func TestRecordInScopes(t *testing.T) {
	cases := map[string]struct {
		src     string
		wantErr bool
	}{
		"gotch v0.9.1":            {src: newTensorV091},
		"no registration":         {src: "func newTensor() {}\n", wantErr: true},
		"registration seen twice": {src: newTensorV091 + newTensorV091, wantErr: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := recordInScopes([]byte(c.src))
			if c.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "was not found once")
				return
			}
			require.NoError(t, err)
			assert.Contains(t, string(out), "ExistingTensors[name] = struct{}{}\n\tloraqaRecord(x) // loraqa: scopes (loraqa_scope.go)\n\tlock.Unlock()\n", "recorded under the lock")
		})
	}
}

// The patch applies to the real gotch v0.9.1 source when the module cache
// holds it.
func TestRecordInScopesOnGotch(t *testing.T) {
	dir, err := gotchSource()
	if err != nil {
		t.Skipf("gotch %s is not in the module cache: %v", gotchVersion, err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "ts", "tensor.go"))
	require.NoError(t, err)
	out, err := recordInScopes(src)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(out), "loraqaRecord(x)"))
}
