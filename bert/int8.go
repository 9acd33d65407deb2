package bert

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/torch"
)

// Quantize makes the model an int8 one for inference on the CPU, as
// torch.ao.quantization.quantize_dynamic does with per_channel_dynamic_qconfig:
// the weight of every encoder linear (attention q, k, v and output, the two
// feed-forward layers) is quantized to int8 per output row and prepacked once
// (torch.QLinear), and its float32 copy freed; each forward quantizes the
// activations going into those linears, to 8 bits on a CPU with avx512_vnni
// and 7 elsewhere (torch.Int8ActivationBits; torch.ao always uses 7). The
// word embeddings, a third of a base model's weights, are stored in 8 bits
// per row as float_qparams_weight_only_qconfig stores them
// (torch.QEmbedding). The position and type embeddings, LayerNorms,
// attention matmuls, biases and the qa_outputs head stay float32, and a LoRA
// layer over an int8 linear adds its update in float32. Merge an adapter
// before quantizing to have the merged weight quantized.
//
// It needs a float32 model on the CPU and a LibTorch with fbgemm
// (torch.Int8Available). It is all-or-nothing: on an error the model is as it
// was. There is no way back to float32 (reload the model), and no training:
// the int8 linears have no backward.
func (m *Model) Quantize() error { return m.QuantizeBits(0) }

// QuantizeBits is Quantize with the activations given bits bits: 7 as
// torch.ao gives them, 8, or 0 for the host CPU's choice.
func (m *Model) QuantizeBits(bits int) error {
	if m.int8 {
		return nil
	}
	if m.pendingBits != 0 {
		return fmt.Errorf("int8: the model's weights are not in yet (Init or Load); it becomes int8 as they come")
	}
	if err := canQuantize(m.Device, m.DType); err != nil {
		return err
	}
	if bits == 0 {
		bits = torch.HostCPU().Int8ActivationBits
	}
	word, err := m.quantizeWordEmb(false)
	if err != nil {
		return err
	}
	qs := make([]*torch.QLinear, len(m.linears))
	for i, nl := range m.linears {
		q, err := torch.NewQLinear(nl.l.Weight, nl.l.Bias, bits)
		if err != nil {
			for _, done := range qs[:i] {
				done.Drop()
			}
			word.Drop()
			return fmt.Errorf("int8: quantizing %s: %w", nl.name, err)
		}
		qs[i] = q
	}
	m.adoptWordEmb(word)
	for i, nl := range m.linears {
		m.adopt(nl.l, qs[i])
	}
	m.finishInt8()
	m.int8 = true
	return nil
}

// canQuantize says why a base on dev in dtype cannot become int8, or nil.
func canQuantize(dev gotch.Device, dtype gotch.DType) error {
	switch {
	case dev.IsCuda():
		return fmt.Errorf("int8: the model is on %s; int8 runs on the CPU only", torch.DeviceName(dev))
	case dtype != gotch.Float:
		return fmt.Errorf("int8: the base is %s; quantize a float32 one", torch.DTypeName(dtype))
	}
	if err := torch.Int8Available(); err != nil {
		return fmt.Errorf("int8: %w", err)
	}
	return nil
}

// adopt makes q the weight of l and frees l's float32 weight.
func (m *Model) adopt(l *Linear, q *torch.QLinear) {
	l.q = q
	m.qParams += q.Out * q.In
	m.markFreed(l.Weight)
	l.Weight.MustDrop()
	l.Weight = nil
}

// quantizeWordEmb packs the word embeddings in 8 bits. With consume it
// frees the float32 table as soon as its quantized copy exists (the lower
// peak a model made int8 by New wants) and adopts the packed one; without,
// adoptWordEmb does both later.
func (m *Model) quantizeWordEmb(consume bool) (*torch.QEmbedding, error) {
	table := m.WordEmb
	if consume {
		m.markFreed(table)
		m.WordEmb = nil
	}
	q, err := torch.NewQEmbedding(table, consume)
	if err != nil {
		return nil, fmt.Errorf("int8: quantizing the word embeddings: %w", err)
	}
	if consume {
		m.qWord = q
		m.qParams += q.Rows * q.Dim
	}
	return q, nil
}

// adoptWordEmb makes q the word embeddings and frees the float32 table.
func (m *Model) adoptWordEmb(q *torch.QEmbedding) {
	m.qWord = q
	m.qParams += q.Rows * q.Dim
	m.markFreed(m.WordEmb)
	m.WordEmb.MustDrop()
	m.WordEmb = nil
}

// pruneFreed removes the parameters markFreed recorded.
func (m *Model) pruneFreed() {
	kept := m.params[:0]
	for _, p := range m.params {
		if !m.freed[p.Tensor] {
			kept = append(kept, p)
		}
	}
	m.params, m.freed = kept, nil
}

// markFreed records that a float32 parameter an int8 one replaces is (or is
// about to be) dropped; pruneFreed removes it from the parameters.
func (m *Model) markFreed(t *ts.Tensor) {
	if m.freed == nil {
		m.freed = map[*ts.Tensor]bool{}
	}
	m.freed[t] = true
}

// filled is told that parameter i now holds its values. In a model made int8
// by New, the word embeddings are quantized as soon as they are filled, and
// an encoder linear as soon as its bias, which follows its weight, is.
func (m *Model) filled(i int) error {
	if m.pendingBits == 0 {
		return nil
	}
	p := m.params[i]
	if p.Tensor == m.WordEmb {
		_, err := m.quantizeWordEmb(true)
		return err
	}
	for _, nl := range m.linears {
		if nl.l.Bias != p.Tensor {
			continue
		}
		q, err := torch.NewQLinear(nl.l.Weight, nl.l.Bias, m.pendingBits)
		if err != nil {
			return fmt.Errorf("int8: quantizing %s: %w", nl.name, err)
		}
		m.adopt(nl.l, q)
		return nil
	}
	return nil
}

// finishInt8 removes the freed float32 weights from the parameters and, in a
// model made int8 by New, marks it int8 once every linear is.
func (m *Model) finishInt8() {
	m.pruneFreed()
	if m.pendingBits == 0 || m.qWord == nil {
		return
	}
	for _, nl := range m.linears {
		if nl.l.q == nil {
			return
		}
	}
	m.int8, m.pendingBits = true, 0
}

// Int8 reports whether the encoder's linears are int8 (Quantize).
func (m *Model) Int8() bool { return m.int8 }

// namedLinear is one of the encoder's linears with its HF module name.
type namedLinear struct {
	name string
	l    *Linear
}
