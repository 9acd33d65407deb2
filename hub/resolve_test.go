package hub

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bigWeights is generated once: it is read-only.
var bigWeights = sync.OnceValue(func() []byte { return randomBytes(progressMinSize+12345, 1) })

// tinyRepo is a model repository: config, safetensors weights above the
// progress threshold, and some tokenizer files.
func tinyRepo() map[string][]byte {
	return map[string][]byte{
		"config.json":             []byte(`{"model_type": "distilbert"}`),
		"model.safetensors":       bigWeights(),
		"vocab.txt":               []byte("[PAD]\n[UNK]\n"),
		"tokenizer_config.json":   []byte(`{"do_lower_case": true}`),
		"special_tokens_map.json": []byte(`{}`),
	}
}

// hubWith is a fake hub serving files as repo.
func hubWith(t *testing.T, repo string, files map[string][]byte) *fakeHub {
	h := newFakeHub(t)
	h.add(repo, files)
	return h
}

// assertNotFound resolves ref with opts and checks that it fails with
// ErrNotFound and, where msg is not "", says msg.
func assertNotFound(t *testing.T, opts Options, ref, msg string) {
	t.Helper()
	_, err := Resolve(context.Background(), ref, opts)
	assert.ErrorIs(t, err, ErrNotFound)
	if msg != "" {
		assert.ErrorContains(t, err, msg)
	}
}

// hermetic returns Options that use only the fake hub and a temporary cache.
func hermetic(t *testing.T, h *fakeHub) (Options, string) {
	cache := filepath.Join(t.TempDir(), "hub")
	return Options{Endpoint: h.srv.URL, CacheDir: cache, Env: mapEnv(nil)}, cache
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestDownloadIntoCacheLayout(t *testing.T) {
	files := tinyRepo()
	h := hubWith(t, "org/tiny", files)
	opts, cache := hermetic(t, h)
	var prog bytes.Buffer
	opts.Progress = &prog

	dir, err := Resolve(context.Background(), "org/tiny", opts)
	require.NoError(t, err)
	repoDir := filepath.Join(cache, "models--org--tiny")
	assert.Equal(t, filepath.Join(repoDir, "snapshots", h.commit), dir)
	assert.Equal(t, h.commit, string(readFile(t, filepath.Join(repoDir, "refs", "main"))), "refs/main holds the commit, no newline")

	cases := []struct {
		name string
		etag string
	}{
		{"config.json", gitSHA1(files["config.json"])},
		{"model.safetensors", sha256Hex(files["model.safetensors"])},
		{"vocab.txt", gitSHA1(files["vocab.txt"])},
		{"tokenizer_config.json", gitSHA1(files["tokenizer_config.json"])},
		{"special_tokens_map.json", gitSHA1(files["special_tokens_map.json"])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target, err := os.Readlink(filepath.Join(dir, c.name))
			require.NoError(t, err, "snapshot entries are symlinks")
			assert.Equal(t, filepath.Join("..", "..", "blobs", c.etag), target)
			assert.Equal(t, files[c.name], readFile(t, filepath.Join(repoDir, "blobs", c.etag)))
			assert.Equal(t, files[c.name], readFile(t, filepath.Join(dir, c.name)))
		})
	}
	_, err = os.Stat(filepath.Join(repoDir, ".no_exist", h.commit, "tokenizer.json"))
	assert.NoError(t, err, "a missing optional file is recorded as huggingface_hub does")
	_, err = os.Stat(filepath.Join(dir, "tokenizer.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	leftovers, _ := filepath.Glob(filepath.Join(repoDir, "blobs", ".*.tmp"))
	assert.Empty(t, leftovers)

	assert.Contains(t, prog.String(), "model.safetensors: 100% 1.1/1.1 MB")
	assert.True(t, strings.HasSuffix(prog.String(), " done\n"), prog.String())
	assert.NotContains(t, prog.String(), "config.json", "no progress for small files")
	assert.Equal(t, 1, h.count("GET /cdn/"), "the LFS file is fetched from the redirect target")
	assert.Equal(t, 1, h.count("HEAD /org/tiny/resolve/main/config.json"), "first request by revision")
	assert.Equal(t, 1, h.count("HEAD /org/tiny/resolve/"+h.commit+"/model.safetensors"), "then by commit")

	// A second online resolve reuses the verified blobs.
	_, err = Resolve(context.Background(), "org/tiny", opts)
	require.NoError(t, err)
	assert.Equal(t, 1, h.count("GET /cdn/"))
	assert.Equal(t, 1, h.count("GET /org/tiny/resolve/main/config.json"))
}

func TestOfflineUsesCache(t *testing.T) {
	h := hubWith(t, "org/tiny", tinyRepo())
	opts, cache := hermetic(t, h)
	want, err := Resolve(context.Background(), "org/tiny", opts)
	require.NoError(t, err)
	h.srv.Close()

	cases := []struct {
		name string
		opts Options
	}{
		{"Options.Offline", Options{Endpoint: h.srv.URL, CacheDir: cache, Offline: true, Env: mapEnv(nil)}},
		{"HF_HUB_OFFLINE and HF_HUB_CACHE", Options{Env: mapEnv(map[string]string{"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": cache})}},
		{"HF_HOME", Options{Env: mapEnv(map[string]string{"HF_HUB_OFFLINE": "true", "HF_HOME": filepath.Dir(cache)})}},
		{"commit revision", Options{Endpoint: h.srv.URL, CacheDir: cache, Offline: true, Env: mapEnv(nil)}},
		{"hub unreachable falls back to the cache", Options{Endpoint: h.srv.URL, CacheDir: cache, Env: mapEnv(nil)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := "org/tiny"
			if c.name == "commit revision" {
				ref += "@" + h.commit
			}
			dir, err := Resolve(context.Background(), ref, c.opts)
			require.NoError(t, err)
			assert.Equal(t, want, dir)
		})
	}
}

func TestDamagedBlobIsFetchedAgain(t *testing.T) {
	cases := []struct {
		name   string
		damage func(path string)
	}{
		{"truncated", func(p string) { require.NoError(t, os.Truncate(p, 1000)) }},
		{"same size, one byte changed", func(p string) {
			b := readFile(t, p)
			b[7] ^= 1
			require.NoError(t, os.WriteFile(p, b, 0o644))
		}},
		{"deleted", func(p string) { require.NoError(t, os.Remove(p)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := tinyRepo()
			h := hubWith(t, "org/tiny", files)
			opts, cache := hermetic(t, h)
			dir, err := Resolve(context.Background(), "org/tiny", opts)
			require.NoError(t, err)
			blob := filepath.Join(cache, "models--org--tiny", "blobs", sha256Hex(files["model.safetensors"]))
			c.damage(blob)

			offline := opts
			offline.Offline = true
			_, err = Resolve(context.Background(), "org/tiny", offline)
			require.Error(t, err, "offline, the damage is reported")
			assert.Contains(t, err.Error(), "model.safetensors")

			var prog bytes.Buffer
			opts.Progress = &prog
			_, err = Resolve(context.Background(), "org/tiny", opts)
			require.NoError(t, err)
			assert.Equal(t, 2, h.count("GET /cdn/"), "downloaded again")
			if c.name != "deleted" {
				assert.Contains(t, prog.String(), "cached model.safetensors is damaged")
			}
			assert.Equal(t, files["model.safetensors"], readFile(t, filepath.Join(dir, "model.safetensors")))
		})
	}
}

func TestOfflineWithoutCache(t *testing.T) {
	opts := Options{CacheDir: t.TempDir(), Offline: true, Env: mapEnv(nil)}
	_, err := Resolve(context.Background(), "org/absent@v2", opts)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNotCached)
	for _, want := range []string{"org/absent@v2 is not in the Hugging Face cache " + opts.CacheDir, "HF_HUB_OFFLINE", "huggingface-cli download org/absent --revision v2"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestOfflineIncompleteSnapshot(t *testing.T) {
	h := hubWith(t, "org/tiny", tinyRepo())
	opts, _ := hermetic(t, h)
	dir, err := Resolve(context.Background(), "org/tiny", opts)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, "model.safetensors")))
	opts.Offline = true
	_, err = Resolve(context.Background(), "org/tiny", opts)
	assert.ErrorIs(t, err, ErrNotCached)
	assert.ErrorContains(t, err, "has no weights")
}

func TestWeightPreference(t *testing.T) {
	index := `{"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}`
	cases := []struct {
		name    string
		weights map[string][]byte
		want    []string
		notWant []string // absent from the snapshot, and never requested
	}{
		{"safetensors over bin",
			map[string][]byte{"model.safetensors": []byte("st"), "pytorch_model.bin": []byte("pt"), "model.safetensors.index.json": []byte(index)},
			[]string{"model.safetensors"}, []string{"pytorch_model.bin", "model.safetensors.index.json"}},
		{"shards over bin",
			map[string][]byte{"model.safetensors.index.json": []byte(index), "model-00001-of-00002.safetensors": []byte("s1"), "model-00002-of-00002.safetensors": []byte("s2"), "pytorch_model.bin": []byte("pt")},
			[]string{"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}, []string{"pytorch_model.bin"}},
		{"bin alone", map[string][]byte{"pytorch_model.bin": []byte("pt")}, []string{"pytorch_model.bin"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string][]byte{"config.json": []byte("{}")}
			for k, v := range c.weights {
				files[k] = v
			}
			h := hubWith(t, "m", files)
			opts, _ := hermetic(t, h)
			dir, err := Resolve(context.Background(), "m", opts)
			require.NoError(t, err)
			for _, name := range c.want {
				assert.Equal(t, files[name], readFile(t, filepath.Join(dir, name)))
			}
			for _, name := range c.notWant {
				assert.NoFileExists(t, filepath.Join(dir, name))
				assert.Zero(t, h.count("/"+name), "%s never requested", name)
			}
			assert.Contains(t, h.log(), "HEAD /m/resolve/"+h.commit+"/model.safetensors", "the preferred file is always asked for first")
			opts.Offline = true
			again, err := Resolve(context.Background(), "m", opts)
			require.NoError(t, err, "the snapshot is complete for offline use")
			assert.Equal(t, dir, again)
		})
	}
}

func TestNoWeights(t *testing.T) {
	h := hubWith(t, "m", map[string][]byte{"config.json": []byte("{}")})
	opts, _ := hermetic(t, h)
	assertNotFound(t, opts, "m", "has no weights: none of model.safetensors, model.safetensors.index.json, pytorch_model.bin")
}

func TestTokenSent(t *testing.T) {
	h := hubWith(t, "org/private", tinyRepo())
	h.private["org/private"] = "hf_secret"
	cases := []struct {
		name string
		opts func(Options) Options
	}{
		{"Options.Token", func(o Options) Options { o.Token = "hf_secret"; return o }},
		{"HF_TOKEN", func(o Options) Options { o.Env = mapEnv(map[string]string{"HF_TOKEN": "hf_secret"}); return o }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, _ := hermetic(t, h)
			h.mu.Lock()
			h.auth = nil
			h.mu.Unlock()
			_, err := Resolve(context.Background(), "org/private", c.opts(opts))
			require.NoError(t, err)
			h.mu.Lock()
			defer h.mu.Unlock()
			require.NotEmpty(t, h.auth)
			for _, a := range h.auth {
				assert.Equal(t, "Bearer hf_secret", a)
			}
		})
	}
	opts, _ := hermetic(t, h)
	assertNotFound(t, opts, "org/private", "set HF_TOKEN")
}

func TestDownloadErrors(t *testing.T) {
	h := hubWith(t, "org/tiny", tinyRepo())
	h.add("org/nocfg", map[string][]byte{"model.safetensors": []byte("x")})
	h.corrupt["model.safetensors"] = true
	opts, cache := hermetic(t, h)

	_, err := Resolve(context.Background(), "org/tiny", opts)
	assert.ErrorIs(t, err, ErrCorrupt, "a download not matching its sha256 is rejected")
	assert.ErrorContains(t, err, "sha256")
	blobs, _ := os.ReadDir(filepath.Join(cache, "models--org--tiny", "blobs"))
	for _, b := range blobs {
		assert.NotContains(t, b.Name(), sha256Hex(tinyRepo()["model.safetensors"]), "no bad blob or temp file left")
	}
	_, err = os.Stat(filepath.Join(cache, "models--org--tiny", "refs", "main"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no ref to an incomplete snapshot")
	leftovers, _ := filepath.Glob(filepath.Join(cache, "models--org--tiny", "blobs", ".*.tmp"))
	assert.Empty(t, leftovers, "the rejected download's temporary file is removed")

	assertNotFound(t, opts, "org/missing", "")
	assertNotFound(t, opts, "org/tiny@nope", "")
	assertNotFound(t, opts, "org/nocfg", "org/nocfg@main has no config.json")
}

func TestRenamedRepoFollowsRelativeRedirect(t *testing.T) {
	h := hubWith(t, "org/new", tinyRepo())
	h.renamed["org/old"] = "org/new"
	opts, cache := hermetic(t, h)
	dir, err := Resolve(context.Background(), "org/old", opts)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "models--org--old", "snapshots", h.commit), dir)
	assert.FileExists(t, filepath.Join(dir, "model.safetensors"))
}

func TestLocalDirectory(t *testing.T) {
	model := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(model, "config.json"), []byte("{}"), 0o644))
	empty := t.TempDir()
	file := filepath.Join(empty, "weights.bin")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	cases := []struct {
		ref  string
		want string // error substring; "" = returned as is
	}{
		{model, ""},
		{empty, "has no readable config.json"},
		{file, "is a file"},
		{filepath.Join(empty, "nope"), "does not exist"},
		{"./nope", "does not exist"},
		{"bad id!", "not a local directory nor a hub id"},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			// No endpoint reachable: a local path must never touch the network.
			dir, err := Resolve(context.Background(), c.ref, Options{Endpoint: "http://127.0.0.1:1", CacheDir: t.TempDir(), Env: mapEnv(nil)})
			if c.want == "" {
				require.NoError(t, err)
				assert.Equal(t, c.ref, dir)
				return
			}
			assert.ErrorContains(t, err, c.want)
		})
	}
}
