package peft

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBaseModelAndHasTokenizer: the base an adapter names, an empty one as an
// error naming the file, and whether its directory carries a tokenizer.
func TestBaseModelAndHasTokenizer(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write(ConfigFile, `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_lin"], "base_model_name_or_path": "distilbert-base-uncased"}`)
	base, err := BaseModel(dir)
	require.NoError(t, err)
	assert.Equal(t, "distilbert-base-uncased", base)
	assert.False(t, HasTokenizer(dir))
	write("vocab.txt", "[PAD]\n")
	assert.True(t, HasTokenizer(dir))

	write(ConfigFile, `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_lin"], "base_model_name_or_path": ""}`)
	_, err = BaseModel(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, ConfigFile)+": base_model_name_or_path is empty")

	_, err = BaseModel(filepath.Join(dir, "nope"))
	assert.Error(t, err)
}
