package hub

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DefaultEndpoint is the hub used when neither Options nor HF_ENDPOINT name one.
const DefaultEndpoint = "https://huggingface.co"

// Options configure Resolve. Zero fields take their value from the
// environment (read through Env), then from the defaults.
type Options struct {
	// Endpoint of the hub; default $HF_ENDPOINT, else DefaultEndpoint.
	Endpoint string
	// CacheDir is the hub cache (the directory holding models--*); default
	// $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
	CacheDir string
	// Token is sent as "Authorization: Bearer"; default $HF_TOKEN, else
	// $HUGGING_FACE_HUB_TOKEN.
	Token string
	// Offline uses the cache only; it is also on when HF_HUB_OFFLINE is 1,
	// true, yes or on.
	Offline bool
	// Progress receives a progress line for downloads of 1 MiB or more; nil
	// for none.
	Progress io.Writer
	// HTTPClient is used for requests; nil means a default client.
	HTTPClient *http.Client
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
}

// settings are Options with the environment and defaults applied.
type settings struct {
	endpoint *url.URL
	cacheDir string
	token    string
	offline  bool
	progress io.Writer
	client   *http.Client
}

func (o Options) settings() (*settings, error) {
	env := o.Env
	if env == nil {
		env = os.LookupEnv
	}
	get := func(k string) string {
		v, _ := env(k)
		return strings.TrimSpace(v)
	}
	s := &settings{token: o.Token, offline: o.Offline, progress: o.Progress}

	endpoint, source := o.Endpoint, "Options.Endpoint"
	if endpoint == "" {
		endpoint, source = get("HF_ENDPOINT"), "HF_ENDPOINT"
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub: %s %q is not an http(s) URL", source, endpoint)
	}
	s.endpoint = u

	s.cacheDir = o.CacheDir
	if s.cacheDir == "" {
		s.cacheDir = get("HF_HUB_CACHE")
	}
	if s.cacheDir == "" {
		if home := get("HF_HOME"); home != "" {
			s.cacheDir = filepath.Join(home, "hub")
		}
	}
	if s.cacheDir == "" {
		base := get("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("hub: no cache directory (set HF_HOME or HF_HUB_CACHE): %w", err)
			}
			base = filepath.Join(home, ".cache")
		}
		s.cacheDir = filepath.Join(base, "huggingface", "hub")
	}
	if rest, ok := strings.CutPrefix(s.cacheDir, "~"+string(filepath.Separator)); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("hub: expanding ~ in cache directory %q: %w", s.cacheDir, err)
		}
		s.cacheDir = filepath.Join(home, rest)
	}

	if !s.offline {
		switch strings.ToLower(get("HF_HUB_OFFLINE")) {
		case "1", "true", "yes", "on":
			s.offline = true
		}
	}
	if s.token == "" {
		s.token = get("HF_TOKEN")
	}
	if s.token == "" {
		s.token = get("HUGGING_FACE_HUB_TOKEN")
	}

	base := o.HTTPClient
	if base == nil {
		base = http.DefaultClient
	}
	client := *base
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &client
	return s, nil
}
