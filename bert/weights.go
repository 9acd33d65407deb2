package bert

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/pickle"

	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// HostTensor is a tensor of a weights file (a model's or an adapter's) read
// into Go memory as float32.
type HostTensor struct {
	Shape []int64
	Data  []float32
	File  string // the file it came from, for error messages
	// NonFloat names the dtype of an integer or bool tensor (a buffer such as
	// position_ids); its values are not read.
	NonFloat string
}

// readModelWeights reads every tensor of a model directory: model.safetensors, a
// sharded model.safetensors.index.json, or pytorch_model.bin (in that order of
// preference). F16, BF16 and F64 are converted to float32.
func readModelWeights(dir string) (map[string]HostTensor, error) {
	if p := filepath.Join(dir, "model.safetensors"); fileExists(p) {
		return ReadSafetensors(p)
	}
	if p := filepath.Join(dir, "model.safetensors.index.json"); fileExists(p) {
		return readSharded(p)
	}
	if p := filepath.Join(dir, "pytorch_model.bin"); fileExists(p) {
		return ReadTorchBin(p)
	}
	return nil, fmt.Errorf("%s: no model.safetensors, model.safetensors.index.json or pytorch_model.bin", dir)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// ReadSafetensors reads every tensor of one safetensors file as float32.
func ReadSafetensors(path string) (map[string]HostTensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]HostTensor{}
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		if !info.DType.IsFloat() {
			out[name] = HostTensor{Shape: info.Shape, File: path, NonFloat: string(info.DType)}
			continue
		}
		v, shape, err := f.Float32s(name)
		if err != nil {
			return nil, err
		}
		out[name] = HostTensor{Shape: shape, Data: v, File: path}
	}
	return out, nil
}

func readSharded(index string) (map[string]HostTensor, error) {
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: empty weight_map", index)
	}
	shards := map[string]bool{}
	for name, shard := range idx.WeightMap {
		if shard == "" || strings.Contains(shard, "/") || strings.Contains(shard, `\`) || shard == ".." {
			return nil, fmt.Errorf("%s: tensor %q: shard name %q must be a file in the same directory", index, name, shard)
		}
		shards[shard] = true
	}
	out := map[string]HostTensor{}
	for shard := range shards {
		part, err := ReadSafetensors(filepath.Join(filepath.Dir(index), shard))
		if err != nil {
			return nil, err
		}
		for k, v := range part {
			out[k] = v
		}
	}
	for name, shard := range idx.WeightMap {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("%s: tensor %q is not in its shard %s", index, name, shard)
		}
	}
	return out, nil
}

// ReadTorchBin reads a PyTorch zip checkpoint (torch.save of a state dict) with
// gotch's pickle reader, which rebuilds only tensors and containers from a
// fixed table of classes: it never executes code from the file.
func ReadTorchBin(path string) (out map[string]HostTensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%s: unreadable PyTorch checkpoint: %v", path, r)
		}
	}()
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if st.Size() < 22 {
		return nil, fmt.Errorf("%s: truncated (%d bytes): not a PyTorch zip checkpoint", path, st.Size())
	}
	// Only the zip format (torch.save since 1.6) is read: gotch's reader of the
	// legacy format exits the process on some malformed input.
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PyTorch zip checkpoint (truncated, or the legacy torch.save format: re-save it, or convert it to safetensors): %w", path, err)
	}
	hasData := false
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/data.pkl") || f.Name == "data.pkl" {
			hasData = true
		}
	}
	zr.Close()
	if !hasData {
		return nil, fmt.Errorf("%s: no data.pkl in the zip: not a torch.save checkpoint", path)
	}
	tensors, err := pickle.Decode(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out = map[string]HostTensor{}
	for name, t := range tensors {
		shape := t.MustSize()
		out[name] = HostTensor{Shape: shape, Data: torch.ToFloat32(t), File: path}
		t.MustDrop()
	}
	return out, nil
}

// LoadOptions says where and how to load a model.
type LoadOptions struct {
	Device gotch.Device
	// DType of the frozen base; the zero value means float32. gotch.Int8
	// quantizes each encoder linear as it is loaded (New, Model.Quantize).
	DType gotch.DType
	// Int8ActivationBits are the bits of an int8 model's activations
	// (Model.QuantizeBits); 0 means the host CPU's choice.
	Int8ActivationBits int
	// Logf receives notices (a fresh QA head) and, with Debug, the unexpected keys.
	Logf  func(format string, a ...any)
	Debug bool
}

// Load reads config.json and the weights of a model directory. Strict: a missing
// tensor or a wrong shape is an error naming the key and the file. A base with no
// QA head gets a fresh one, N(0, 0.02) with bias 0, and a notice.
func Load(dir string, opt LoadOptions) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	w, err := readModelWeights(dir)
	if err != nil {
		return nil, err
	}
	return FromWeights(cfg, w, opt)
}

// FromWeights builds a model from a config and host tensors.
func FromWeights(cfg Config, w map[string]HostTensor, opt LoadOptions) (*Model, error) {
	if opt.DType == 0 {
		opt.DType = gotch.Float
	}
	if opt.Device.Name == "" { // the zero Device would abort inside gotch
		opt.Device = gotch.CPU
	}
	if cfg.BertLayout() {
		w = addPrefix(w, cfg.ModelType+".")
	}
	m, err := New(cfg, opt.Device, opt.DType) // int8: each linear quantized as it is copied in
	if err != nil {
		return nil, err
	}
	if opt.DType == gotch.Int8 && opt.Int8ActivationBits != 0 {
		m.pendingBits = opt.Int8ActivationBits
	}
	var missing []string
	used := map[string]bool{}
	freshHead := false
	for i, p := range m.params {
		h, ok := w[p.Name]
		if !ok {
			if strings.HasPrefix(p.Name, "qa_outputs.") {
				freshHead = true
				continue
			}
			missing = append(missing, p.Name)
			continue
		}
		used[p.Name] = true
		if h.NonFloat != "" {
			m.Drop()
			return nil, fmt.Errorf("%s: tensor %q has dtype %s; model weights must be F32, F16, BF16 or F64", h.File, p.Name, h.NonFloat)
		}
		want := p.Tensor.MustSize()
		if !slices.Equal(want, h.Shape) {
			m.Drop()
			return nil, fmt.Errorf("%s: tensor %q has shape %v, the model's config needs %v", h.File, p.Name, h.Shape, want)
		}
		if err := torch.CopyFromFloat32(p.Tensor, h.Data, h.Shape); err != nil {
			m.Drop()
			return nil, fmt.Errorf("%s: tensor %q: %w", h.File, p.Name, err)
		}
		if err := m.filled(i); err != nil {
			m.Drop()
			return nil, err
		}
	}
	m.finishInt8()
	if len(missing) > 0 {
		m.Drop()
		sort.Strings(missing)
		more := ""
		if len(missing) > 8 {
			more = fmt.Sprintf(" and %d more", len(missing)-8)
			missing = missing[:8]
		}
		return nil, fmt.Errorf("checkpoint is missing %s%s (is it a %s model?)", strings.Join(missing, ", "), more, cfg.ModelType)
	}
	if freshHead {
		initHead(m)
		if opt.Logf != nil {
			opt.Logf("notice: the base model has no qa_outputs head; a fresh one was initialised N(0, 0.02)")
		}
	}
	if opt.Debug && opt.Logf != nil {
		if extra := Unused(w, used); len(extra) > 0 {
			opt.Logf("debug: %d checkpoint tensors not used by the QA model: %s", len(extra), strings.Join(extra, ", "))
		}
	}
	return m, nil
}

// addPrefix accepts BertModel and RobertaModel checkpoints saved without
// their prefix ("bert.", "roberta.").
func addPrefix(w map[string]HostTensor, prefix string) map[string]HostTensor {
	if _, ok := w[prefix+"embeddings.word_embeddings.weight"]; ok {
		return w
	}
	if _, ok := w["embeddings.word_embeddings.weight"]; !ok {
		return w
	}
	out := make(map[string]HostTensor, len(w))
	for k, v := range w {
		if strings.HasPrefix(k, "embeddings.") || strings.HasPrefix(k, "encoder.") || strings.HasPrefix(k, "pooler.") {
			k = prefix + k
		}
		out[k] = v
	}
	return out
}

func initHead(m *Model) {
	noGrad(func() {
		m.Param("qa_outputs.weight").MustNormal_(0, 0.02)
		m.Param("qa_outputs.bias").MustZero_()
	})
}

// Unused lists, sorted, the tensors of w whose names used lacks.
func Unused(w map[string]HostTensor, used map[string]bool) []string {
	var out []string
	for k := range w {
		if !used[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
