package peft_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// modelState is what a failed Inject must leave as it found: every module
// slot's value, every base parameter's values and grad flag, and the number
// of live tensors.
type modelState struct {
	slots  map[string]bert.Module
	values map[string][]float32
	grad   map[string]bool
	live   int
}

func snapshot(m *bert.Model) modelState {
	s := modelState{slots: map[string]bert.Module{}, values: map[string][]float32{}, grad: map[string]bool{}}
	for name, slot := range m.Modules() {
		s.slots[name] = *slot
	}
	for _, p := range m.Params() {
		s.values[p.Name] = torch.ToFloat32(p.Tensor)
		s.grad[p.Name] = p.Tensor.MustRequiresGrad()
	}
	s.live = torch.LiveTensors()
	return s
}

// TestInjectFailureLeavesModelAsItWas injects into a model that already holds
// an adapter (on layer 1's q_lin, and its own qa_outputs copy) configurations
// that fail after some modules were replaced: the model must be exactly as
// before, and the first adapter still usable.
func TestInjectFailureLeavesModelAsItWas(t *testing.T) {
	m, err := bert.New(bert.TinyDistilBERTConfig(), gotch.CPU, gotch.Float)
	require.NoError(t, err)
	defer m.Drop()
	m.Init()
	first := peft.DefaultConfig()
	first.TargetModules, first.LayersToTransform = []string{"q_lin"}, []int{1}
	x, err := peft.Inject(m, first)
	require.NoError(t, err)
	defer x.Drop()
	require.Len(t, x.Layers, 1)
	xTrainable := x.NumTrainable()

	cases := []struct {
		name string
		cfg  func(c *peft.Config)
		want string
	}{
		{"second target already wrapped", func(c *peft.Config) {
			// layer 0's q_lin is wrapped first, then layer 1's is found taken.
			c.TargetModules = []string{"q_lin"}
		}, `module "distilbert.transformer.layer.1.attention.q_lin" is already wrapped`},
		{"second target already wrapped, with DoRA", func(c *peft.Config) {
			c.TargetModules = []string{"q_lin", "v_lin"}
			c.UseDoRA = true
		}, `module "distilbert.transformer.layer.1.attention.q_lin" is already wrapped`},
		{"second target already wrapped, with lora_bias and gaussian init", func(c *peft.Config) {
			c.TargetModules = []string{"q_lin"}
			c.LoraBias, c.InitLoraWeights = true, "gaussian"
		}, `module "distilbert.transformer.layer.1.attention.q_lin" is already wrapped`},
		{"no target matched after the head was copied", func(c *peft.Config) {
			c.TargetModules = []string{"no_such_module"}
		}, "matched no module"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(m)
			cfg := peft.DefaultConfig()
			c.cfg(&cfg)
			a, err := peft.Inject(m, cfg)
			require.Error(t, err)
			assert.Nil(t, a)
			assert.ErrorContains(t, err, c.want)
			after := snapshot(m)
			require.Len(t, after.slots, len(before.slots))
			for name, v := range before.slots {
				assert.Same(t, v, after.slots[name], "module %s holds what it held before", name)
			}
			assert.Equal(t, before.values, after.values, "base parameter values")
			assert.Equal(t, before.grad, after.grad, "base parameters stay frozen")
			assert.Equal(t, before.live, after.live, "the tensors the failed injection made are freed")
		})
	}

	assert.Equal(t, xTrainable, x.NumTrainable())
	require.NoError(t, x.Detach(), "the first adapter is still the model's")
	require.NoError(t, x.Attach())
}
