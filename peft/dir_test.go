package peft

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/torch/safetensors"
)

// TestDir: the base an adapter names (an empty one is an error naming the
// file), whether its directory carries a tokenizer, its windows (also from an
// older loraqa_config.yaml), and a whole write that keeps foreign files.
func TestDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write(ConfigFile, `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_lin"], "base_model_name_or_path": "distilbert-base-uncased"}`)
	require.NoError(t, safetensors.Write(filepath.Join(dir, WeightsFile), []safetensors.Tensor{{Name: "w", DType: safetensors.F32, Shape: []int64{1}, Data: safetensors.Float32sToBytes([]float32{1})}}, nil))
	d, err := OpenDir(dir)
	require.NoError(t, err)
	base, err := d.BaseModel()
	require.NoError(t, err)
	assert.Equal(t, "distilbert-base-uncased", base)
	assert.Empty(t, d.Tokenizer)
	assert.Nil(t, d.Windows)

	write("vocab.txt", "[PAD]\n")
	write(TrainConfigFile, "data:\n  max_seq_length: 64\n  doc_stride: 16\n")
	write("notes.txt", "mine")
	d, err = OpenDir(dir)
	require.NoError(t, err)
	assert.Equal(t, dir, d.Tokenizer)
	assert.Equal(t, &Windows{MaxSeqLength: 64, DocStride: 16}, d.Windows)

	d.Windows = &Windows{MaxSeqLength: 48, DocStride: 8}
	d.Weights = map[string]bert.HostTensor{"w": {Shape: []int64{1}, Data: []float32{2}}}
	out := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "notes.txt"), []byte("kept"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(out, WeightsFileBin), []byte("stale"), 0o644))
	require.NoError(t, d.Write(out))
	back, err := OpenDir(out)
	require.NoError(t, err)
	assert.Equal(t, []float32{2}, back.Weights["w"].Data)
	assert.Equal(t, &Windows{MaxSeqLength: 48, DocStride: 8}, back.Windows)
	assert.Equal(t, out, back.Tokenizer)
	notes, err := os.ReadFile(filepath.Join(out, "notes.txt"))
	require.NoError(t, err)
	assert.Equal(t, "kept", string(notes))
	assert.NoFileExists(t, filepath.Join(out, WeightsFileBin))
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*"))
	assert.Empty(t, left, "no temporary directory is left")

	write(ConfigFile, `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_lin"], "base_model_name_or_path": ""}`)
	d, err = OpenDir(dir)
	require.NoError(t, err)
	_, err = d.BaseModel()
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, ConfigFile)+": base_model_name_or_path is empty")

	_, err = OpenDir(filepath.Join(dir, "nope"))
	assert.Error(t, err)
}

// TestDirWindows: the windows an adapter was trained with come from
// loraqa_windows.json, else from the data section of an older
// loraqa_config.yaml; a broken windows file is an error naming it.
func TestDirWindows(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write(ConfigFile, `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_lin"]}`)
	require.NoError(t, safetensors.Write(filepath.Join(dir, WeightsFile), []safetensors.Tensor{{Name: "w", DType: safetensors.F32, Shape: []int64{1}, Data: safetensors.Float32sToBytes([]float32{1})}}, nil))
	windows := func() (*Windows, error) {
		d, err := OpenDir(dir)
		if err != nil {
			return nil, err
		}
		return d.Windows, nil
	}
	w, err := windows()
	require.NoError(t, err)
	assert.Nil(t, w)

	write(TrainConfigFile, "base_model: x\ndata:\n  input: qa.txt\n  max_seq_length: 192\n  doc_stride: 48\ntrain:\n  epochs: 1\n")
	w, err = windows()
	require.NoError(t, err)
	assert.Equal(t, &Windows{MaxSeqLength: 192, DocStride: 48}, w)

	write(WindowsFile, `{"max_seq_length": 128, "doc_stride": 32}`)
	w, err = windows()
	require.NoError(t, err)
	assert.Equal(t, &Windows{MaxSeqLength: 128, DocStride: 32}, w, "the windows file wins over the config")

	write(WindowsFile, `{"max_seq_length": 16, "doc_stride": 16}`)
	_, err = windows()
	assert.ErrorContains(t, err, WindowsFile)
	assert.ErrorContains(t, err, "max_seq_length 16 and doc_stride 16")
	write(WindowsFile, `{`)
	_, err = windows()
	assert.ErrorContains(t, err, WindowsFile)
}

// TestDirSQuAD2: an adapter's SQuAD 2.0 setting is loraqa_squad2.json,
// written whole with the directory and read back; the threshold defaults to
// HF's 0, a file without version_2_with_negative or not JSON is an error
// naming it, and a directory written again without the setting loses the
// file (it is the Dir's, not a foreign one).
func TestDirSQuAD2(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, ConfigFile), []byte(`{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_lin"]}`), 0o644))
	require.NoError(t, safetensors.Write(filepath.Join(src, WeightsFile), []safetensors.Tensor{{Name: "w", DType: safetensors.F32, Shape: []int64{1}, Data: safetensors.Float32sToBytes([]float32{1})}}, nil))
	d, err := OpenDir(src)
	require.NoError(t, err)
	assert.Nil(t, d.SQuAD2, "no file: no setting")

	out := filepath.Join(t.TempDir(), "out")
	want := &SQuAD2{Version2WithNegative: true, NullScoreDiffThreshold: -1.375, ThresholdFrom: ThresholdBestF1}
	d.SQuAD2 = want
	require.NoError(t, d.Write(out))
	back, err := OpenDir(out)
	require.NoError(t, err)
	assert.Equal(t, want, back.SQuAD2)

	cases := []struct {
		name, body string
		want       *SQuAD2
		err        string
	}{
		{"threshold defaults to 0", `{"version_2_with_negative": true}`, &SQuAD2{Version2WithNegative: true}, ""},
		{"off", `{"version_2_with_negative": false, "null_score_diff_threshold": 2}`, &SQuAD2{NullScoreDiffThreshold: 2}, ""},
		{"no version key", `{"null_score_diff_threshold": 2}`, nil, "version_2_with_negative is missing"},
		{"not JSON", `{`, nil, "unexpected end of JSON input"},
		{"wrong type", `{"version_2_with_negative": "yes"}`, nil, "cannot unmarshal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(filepath.Join(out, SQuAD2File), []byte(tc.body), 0o644))
			d, err := OpenDir(out)
			if tc.err != "" {
				assert.ErrorContains(t, err, filepath.Join(out, SQuAD2File))
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, d.SQuAD2)
		})
	}

	back.SQuAD2 = nil
	require.NoError(t, back.Write(out))
	assert.NoFileExists(t, filepath.Join(out, SQuAD2File))
}
