package bert

import (
	"fmt"

	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/torch"
)

// Pack readies a bf16 model on the CPU for inference the way torch.compile
// readies a frozen linear: the weight of every encoder linear is reordered
// once into oneDNN's blocked layout (torch.PackLinearWeight) and the bf16
// original freed, so no forward packs it again (docs/benchmarks.md has the
// gain). The output is what at::linear gives, both being oneDNN's bf16 GEMM.
//
// Merge an adapter before packing: a packed model has no weights to merge
// into, export or train (peft refuses), though LoRA layers run over it. It
// is for good, and packs one linear at a time: after an error some are
// packed, which changes no output, and Pack may be called again.
// float32 is left as it is: there MKL's GEMM comes close to the packed one.
func (m *Model) Pack() error {
	if m.Device.IsCuda() || m.DType != gotch.BFloat16 || m.int8 || m.pendingBits != 0 {
		what := torch.DTypeName(m.DType) + " on " + torch.DeviceName(m.Device)
		if m.int8 || m.pendingBits != 0 {
			what = "int8"
		}
		return fmt.Errorf("pack: the model is %s; packed linears are for bf16 on the CPU", what)
	}
	if err := torch.PackedLinearAvailable(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	// One at a time, so the packed and the plain copies of only one weight
	// exist at once.
	defer m.pruneFreed()
	for _, nl := range m.linears {
		l := nl.l
		if l.packed != nil {
			continue
		}
		p, err := torch.PackLinearWeight(l.Weight)
		if err != nil {
			return fmt.Errorf("pack %s: %w", nl.name, err)
		}
		l.out, l.in = l.Dims()
		l.packed = p
		m.qParams += l.out * l.in
		m.markFreed(l.Weight)
		l.Weight.MustDrop()
		l.Weight = nil
	}
	return nil
}

// Packed reports whether any of the encoder's linears is packed (Pack).
func (m *Model) Packed() bool {
	for _, nl := range m.linears {
		if nl.l.packed != nil {
			return true
		}
	}
	return false
}
