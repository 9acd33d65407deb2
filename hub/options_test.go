package hub

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRef(t *testing.T) {
	valid := map[string]Ref{
		"distilbert-base-uncased": {"distilbert-base-uncased", "main"},
		"org/name":                {"org/name", "main"},
		"org/name@v1.0":           {"org/name", "v1.0"},
		"org/name@refs/pr/3":      {"org/name", "refs/pr/3"},
		"org/name@" + "0123456789abcdef0123456789abcdef01234567": {"org/name", "0123456789abcdef0123456789abcdef01234567"},
	}
	for in, want := range valid {
		t.Run(in, func(t *testing.T) {
			got, err := ParseRef(in)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
	invalid := map[string]string{
		"a/b/c":              "not a local directory nor a hub id",
		"org--x/name":        "not a local directory nor a hub id",
		"org/na..me":         "not a local directory nor a hub id",
		"-org/name":          "not a local directory nor a hub id",
		"org/name@":          "must be 1 to 255 characters",
		"org/name@../../etc": "has an empty, . or .. component",
		"org/name@/abs":      "is not a relative",
	}
	for in, want := range invalid {
		t.Run(in, func(t *testing.T) {
			_, err := ParseRef(in)
			assert.ErrorContains(t, err, want)
		})
	}
	assert.Equal(t, "models--org--name", Ref{Repo: "org/name"}.folder())
	assert.Equal(t, "models--gpt2", Ref{Repo: "gpt2"}.folder())
}

func TestSettingsFromEnvironment(t *testing.T) {
	home, err := os.UserHomeDir()
	require.NoError(t, err)
	cases := []struct {
		name     string
		opts     Options
		env      map[string]string
		endpoint string
		cache    string
		token    string
		offline  bool
	}{
		{"defaults", Options{}, nil, "https://huggingface.co", filepath.Join(home, ".cache", "huggingface", "hub"), "", false},
		{"XDG_CACHE_HOME", Options{}, map[string]string{"XDG_CACHE_HOME": "/x"}, DefaultEndpoint, "/x/huggingface/hub", "", false},
		{"HF_HOME", Options{}, map[string]string{"HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}, DefaultEndpoint, "/h/hub", "", false},
		{"HF_HUB_CACHE wins over HF_HOME", Options{}, map[string]string{"HF_HOME": "/h", "HF_HUB_CACHE": "/c"}, DefaultEndpoint, "/c", "", false},
		{"Options win", Options{CacheDir: "/o", Endpoint: "http://127.0.0.1:9/", Token: "t1", Offline: true},
			map[string]string{"HF_HUB_CACHE": "/c", "HF_ENDPOINT": "https://mirror.example", "HF_TOKEN": "t2"}, "http://127.0.0.1:9", "/o", "t1", true},
		{"env", Options{}, map[string]string{"HF_HUB_CACHE": "/c", "HF_ENDPOINT": "https://mirror.example/", "HF_TOKEN": "t2", "HF_HUB_OFFLINE": "ON"},
			"https://mirror.example", "/c", "t2", true},
		{"legacy token", Options{}, map[string]string{"HF_HUB_CACHE": "/c", "HUGGING_FACE_HUB_TOKEN": "t3", "HF_HUB_OFFLINE": "0"}, DefaultEndpoint, "/c", "t3", false},
		{"tilde", Options{CacheDir: "~/models"}, nil, DefaultEndpoint, filepath.Join(home, "models"), "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Env = mapEnv(c.env)
			s, err := c.opts.settings()
			require.NoError(t, err)
			assert.Equal(t, c.endpoint, s.endpoint.String())
			assert.Equal(t, c.cache, s.cacheDir)
			assert.Equal(t, c.token, s.token)
			assert.Equal(t, c.offline, s.offline)
		})
	}
	_, err = Options{Env: mapEnv(map[string]string{"HF_ENDPOINT": "ftp://x"})}.settings()
	assert.ErrorContains(t, err, `HF_ENDPOINT "ftp://x" is not an http(s) URL`)
}

func TestProgressLine(t *testing.T) {
	clock := time.Unix(0, 0)
	now := func() time.Time { return clock }
	var out bytes.Buffer
	p := newProgressAt(&out, "model.safetensors", 4_000_000, now)
	step := func(d time.Duration, n int) {
		clock = clock.Add(d)
		_, err := p.Write(make([]byte, n))
		require.NoError(t, err)
	}
	step(100*time.Millisecond, 1_000_000) // too soon: nothing printed
	assert.Empty(t, out.String())
	step(200*time.Millisecond, 1_000_000) // 0.3 s, 2 MB
	assert.Equal(t, "\rmodel.safetensors:  50% 2.0/4.0 MB 6.7 MB/s", out.String())
	step(100*time.Millisecond, 1_000_000) // 0.1 s after the last print: nothing
	step(600*time.Millisecond, 1_000_000) // 1 s, 4 MB
	p.finish(true)
	assert.Equal(t, "\rmodel.safetensors:  50% 2.0/4.0 MB 6.7 MB/s"+
		"\rmodel.safetensors: 100% 4.0/4.0 MB 4.0 MB/s"+
		"\rmodel.safetensors: 100% 4.0/4.0 MB 4.0 MB/s done\n", out.String())

	out.Reset()
	u := newProgressAt(&out, "x.bin", -1, now)
	clock = clock.Add(time.Second)
	u.Write(make([]byte, 500_000))
	u.finish(false)
	assert.Equal(t, "\rx.bin: 0.5 MB 0.5 MB/s\rx.bin: 0.5 MB 0.5 MB/s failed\n", out.String())
}
