package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

var errHalfway = errors.New("failed halfway")

// readDir lists dir's entry names.
func readDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteReplacesOrKeeps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f.json")
	require.NoError(t, Write(p, []byte("old")))
	require.Error(t, WriteReader(p, failingReader{}))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b), "a failed write keeps the old content")
	assert.Equal(t, []string{"f.json"}, readDir(t, filepath.Dir(p)), "no temporary file left behind")
	require.NoError(t, Write(p, []byte("new")))
	b, _ = os.ReadFile(p)
	assert.Equal(t, "new", string(b))
}

func TestWriteFunc(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB: more than the buffer
	cases := []struct {
		name    string
		old     string // "" = no file before
		write   func(w io.Writer) error
		want    string
		wantErr error
	}{
		{name: "new file", write: func(w io.Writer) error { _, err := io.WriteString(w, "a\nb\n"); return err }, want: "a\nb\n"},
		{name: "streamed in pieces", old: "old", write: func(w io.Writer) error {
			for i := 0; i < 3; i++ {
				if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
					return err
				}
			}
			return nil
		}, want: "line 0\nline 1\nline 2\n"},
		{name: "larger than the buffer", old: "old", write: func(w io.Writer) error { _, err := io.WriteString(w, big); return err }, want: big},
		{name: "empty", old: "old", write: func(io.Writer) error { return nil }, want: ""},
		{name: "fails after writing", old: "old", write: func(w io.Writer) error {
			if _, err := io.WriteString(w, big); err != nil {
				return err
			}
			return errHalfway
		}, want: "old", wantErr: errHalfway},
		{name: "fails with no old file", write: func(w io.Writer) error { return errHalfway }, wantErr: errHalfway},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out.bin")
			if c.old != "" {
				require.NoError(t, os.WriteFile(p, []byte(c.old), 0o600))
			}
			err := WriteFunc(p, c.write)
			if c.wantErr != nil {
				require.ErrorIs(t, err, c.wantErr)
				assert.Contains(t, err.Error(), p, "the error names the file")
				if c.old == "" {
					assert.Empty(t, readDir(t, dir), "nothing is left behind")
					return
				}
			} else {
				require.NoError(t, err)
				st, err := os.Stat(p)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
			}
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, c.want, string(b))
			assert.Equal(t, []string{"out.bin"}, readDir(t, dir), "no temporary file left behind")
		})
	}
}

func TestWriteFuncTempFileIsHiddenBesideTarget(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	var during []string
	require.NoError(t, WriteFunc(p, func(w io.Writer) error {
		during = readDir(t, dir)
		return nil
	}))
	require.Len(t, during, 1, "while writing, only the temporary file exists")
	ok, err := filepath.Match(TempPattern(p), during[0])
	require.NoError(t, err)
	assert.True(t, ok, "%s matches %s", during[0], TempPattern(p))
	assert.True(t, strings.HasPrefix(during[0], ".model.safetensors."))
}

func TestWriteFuncUnwritableDirectory(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	err := Write(filepath.Join(blocker, "x.json"), []byte("{}"))
	require.Error(t, err, "a regular file where the directory should be")
	assert.Contains(t, err.Error(), filepath.Join(blocker, "x.json"))
}
