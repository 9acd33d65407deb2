package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/torch"
)

// doctor --json has the cuda object on every build, and says plainly when
// there is no GPU; the text form prints the same facts.
func TestDoctorReportsCUDA(t *testing.T) {
	out, err := stdout(t, func() error { return runDoctor(context.Background(), []string{"--json"}) })
	require.NoError(t, err)
	var got struct {
		Flavour string `json:"flavour"`
		CUDA    struct {
			Available *bool   `json:"available"`
			Reason    *string `json:"reason"`
			Loaded    *bool   `json:"libtorch_cuda_loaded"`
			Runtime   *string `json:"runtime_version"`
			Driver    *struct {
				Loaded  *bool   `json:"loaded"`
				Version *string `json:"version"`
			} `json:"driver"`
			Devices []json.RawMessage `json:"devices"`
		} `json:"cuda"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	c := got.CUDA
	require.NotNil(t, c.Available, out)
	require.NotNil(t, c.Loaded, out)
	require.NotNil(t, c.Runtime, out)
	require.NotNil(t, c.Driver, out)
	require.NotNil(t, c.Driver.Loaded, out)
	require.NotNil(t, c.Driver.Version, out)
	assert.Equal(t, got.Flavour == "cuda", *c.Loaded, "libtorch_cuda is mapped exactly in the cuda flavour")
	if !torch.CUDAAvailable() {
		assert.False(t, *c.Available)
		require.NotNil(t, c.Reason, out)
		if len(c.Devices) == 0 {
			assert.True(t, strings.HasPrefix(*c.Reason, "no GPU: "), *c.Reason)
		}
	}

	text, err := stdout(t, func() error { return runDoctor(context.Background(), nil) })
	require.NoError(t, err)
	for _, line := range []string{"libtorch_cuda ", "nvidia driver ", "cuda runtime ", "cuda available "} {
		assert.Contains(t, text, "\n"+line)
	}
	if !*c.Available {
		assert.Contains(t, text, "cuda available   false: "+*c.Reason)
	}
}
