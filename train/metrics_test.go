package train

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenMetrics: a resumed run keeps the metrics lines of the steps up to
// its checkpoint (unreadable lines are dropped), a fresh one starts empty, and
// new lines are appended after the kept ones.
func TestOpenMetrics(t *testing.T) {
	old := `{"type":"train","step":1,"loss":3}
{"type":"eval","step":2,"f1":10}
not json
{"type":"train","step":3,"loss":2}
`
	cases := []struct {
		name string
		old  string // "" = no file
		from int64
		want string // before the appended line
	}{
		{"fresh run", old, 0, ""},
		{"resumed at step 2", old, 2, "{\"type\":\"train\",\"step\":1,\"loss\":3}\n{\"type\":\"eval\",\"step\":2,\"f1\":10}\n"},
		{"resumed past the end", old, 9, "{\"type\":\"train\",\"step\":1,\"loss\":3}\n{\"type\":\"eval\",\"step\":2,\"f1\":10}\n{\"type\":\"train\",\"step\":3,\"loss\":2}\n"},
		{"resumed without a file", "", 4, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			path := filepath.Join(dir, "metrics.jsonl")
			if c.old != "" {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.WriteFile(path, []byte(c.old), 0o644))
			}
			w, err := openMetrics(dir, c.from)
			require.NoError(t, err)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, c.want, string(b))
			w.log(map[string]any{"type": "train", "step": c.from + 1})
			w.Close()
			b, err = os.ReadFile(path)
			require.NoError(t, err)
			line := fmt.Sprintf(`{"step":%d,"type":"train"}`+"\n", c.from+1)
			assert.Equal(t, c.want+line, string(b), "the new line is appended after the kept ones")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file left")
		})
	}
}
