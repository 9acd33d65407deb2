package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loraqa/loraqa/data"
)

// weightFiles in order of preference; the index names shards.
var weightFiles = []string{"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"}

const (
	configFile  = "config.json"
	shardsIndex = "model.safetensors.index.json"
	maxIndex    = 64 << 20
)

type client struct {
	s  *settings
	rc repoCache
}

// Resolve returns a local directory holding the model ref: ref itself when
// it is a directory with config.json, else the snapshot directory of the
// hub id in the cache, downloading what is missing unless offline. When
// the hub cannot be reached, a complete cached snapshot is used.
func Resolve(ctx context.Context, ref string, opts Options) (string, error) {
	if dir, ok, err := localDir(ref); ok || err != nil {
		return dir, err
	}
	r, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	s, err := opts.settings()
	if err != nil {
		return "", err
	}
	c := &client{s: s, rc: repoCache{dir: filepath.Join(s.cacheDir, r.folder())}}
	if s.offline {
		return c.cached(r)
	}
	dir, err := c.online(ctx, r)
	var ne *netError
	if err != nil && errors.As(err, &ne) && ctx.Err() == nil {
		if cached, cerr := c.cached(r); cerr == nil {
			if s.progress != nil {
				fmt.Fprintf(s.progress, "hub unreachable (%v); using the cached %s\n", err, r)
			}
			return cached, nil
		}
	}
	return dir, err
}

// localDir recognises local model directories. ok is false for references
// that are not local paths.
func localDir(ref string) (string, bool, error) {
	fi, err := os.Stat(ref)
	switch {
	case err == nil && !fi.IsDir():
		return "", true, fmt.Errorf("hub: model reference %s is a file; want a directory with config.json, or a hub id", ref)
	case err == nil:
		if _, err := os.Stat(filepath.Join(ref, configFile)); err != nil {
			return "", true, fmt.Errorf("hub: local model directory %s has no readable config.json: %w", ref, err)
		}
		return ref, true, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", true, fmt.Errorf("hub: model reference: %w", err)
	case filepath.IsAbs(ref) || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "~"):
		return "", true, fmt.Errorf("hub: local model directory %s does not exist", ref)
	}
	return "", false, nil
}

// online fetches the model's files, reusing verified cached blobs.
func (c *client) online(ctx context.Context, r Ref) (string, error) {
	cfg, err := c.head(ctx, r.Repo, r.Revision, configFile)
	if err != nil {
		return "", c.explain(r, configFile, err)
	}
	commit := cfg.commit
	if err := c.fetch(ctx, cfg); err != nil {
		return "", err
	}
	found := false
	for _, name := range weightFiles {
		m, err := c.optional(ctx, r, commit, name)
		if err != nil {
			return "", err
		}
		if m == nil {
			continue
		}
		if err := c.fetch(ctx, m); err != nil {
			return "", err
		}
		if name == shardsIndex {
			if err := c.fetchShards(ctx, r, commit); err != nil {
				return "", err
			}
		}
		found = true
		break
	}
	if !found {
		return "", fmt.Errorf("hub: %s (commit %s) has no weights: none of %s: %w", r, commit, strings.Join(weightFiles, ", "), ErrNotFound)
	}
	// The tokenizer files (data.TokenizerFiles) are fetched when the repository has them.
	for _, name := range data.TokenizerFiles {
		m, err := c.optional(ctx, r, commit, name)
		if err != nil {
			return "", err
		}
		if m != nil {
			if err := c.fetch(ctx, m); err != nil {
				return "", err
			}
		}
	}
	if err := c.rc.writeRef(r.Revision, commit); err != nil {
		return "", err
	}
	return c.rc.snapshot(commit), nil
}

// optional returns the metadata of a file, or nil if the hub says it does
// not exist (recorded in .no_exist as huggingface_hub does).
func (c *client) optional(ctx context.Context, r Ref, commit, name string) (*fileMeta, error) {
	m, err := c.head(ctx, r.Repo, commit, name)
	if errors.Is(err, errEntryNotFound) {
		c.rc.markMissing(commit, name)
		return nil, nil
	}
	if err != nil {
		return nil, c.explain(r, name, err)
	}
	return m, nil
}

// fetch makes sure the blob of m is in the cache and intact, then links it
// into the snapshot.
func (c *client) fetch(ctx context.Context, m *fileMeta) error {
	blob := c.rc.blob(m.etag)
	err := checkBlob(blob, m.size)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrCorrupt):
		if errors.Is(err, ErrCorrupt) && c.s.progress != nil {
			fmt.Fprintf(c.s.progress, "cached %s is damaged (%v); downloading it again\n", m.name, err)
		}
		if err := c.download(ctx, m, blob); err != nil {
			return err
		}
	default:
		return err
	}
	return c.rc.link(m.commit, m.name, blob)
}

// fetchShards downloads the shards named by the snapshot's index.
func (c *client) fetchShards(ctx context.Context, r Ref, commit string) error {
	shards, err := readShards(c.rc.pointer(commit, shardsIndex))
	if err != nil {
		return err
	}
	for _, name := range shards {
		m, err := c.head(ctx, r.Repo, commit, name)
		if err != nil {
			return c.explain(r, name, err)
		}
		if err := c.fetch(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// readShards returns the sorted distinct shard files of an index.
func readShards(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	dec := json.NewDecoder(limitReader(f, maxIndex))
	if err := dec.Decode(&idx); err != nil {
		return nil, fmt.Errorf("hub: %s: %w", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("hub: %s: weight_map is missing or empty", path)
	}
	seen := map[string]bool{}
	var shards []string
	for tensor, file := range idx.WeightMap {
		if err := checkRelPath(file); err != nil {
			return nil, fmt.Errorf("hub: %s: weight_map[%q]: %w", path, tensor, err)
		}
		if !seen[file] {
			seen[file] = true
			shards = append(shards, file)
		}
	}
	sort.Strings(shards)
	return shards, nil
}

// explain adds what was being fetched, and a hint for missing repositories.
func (c *client) explain(r Ref, name string, err error) error {
	if errors.Is(err, errEntryNotFound) {
		return fmt.Errorf("hub: %s has no %s: %w (%w)", r, name, ErrNotFound, err)
	}
	if errors.Is(err, ErrNotFound) {
		hint := "check the id and revision"
		if c.s.token == "" {
			hint += "; for a private or gated model set HF_TOKEN"
		}
		return fmt.Errorf("hub: %s: repository or revision not found or not accessible (%s): %w", r, hint, err)
	}
	return fmt.Errorf("hub: fetching %s of %s: %w", name, r, err)
}

// cached resolves a model from the cache alone, checking that the
// snapshot is complete and its blobs intact.
func (c *client) cached(r Ref) (string, error) {
	notCached := func(why string) error {
		return fmt.Errorf("hub: %s %s in the Hugging Face cache %s and offline mode is on (HF_HUB_OFFLINE or Options.Offline): "+
			"run once with network access (unset HF_HUB_OFFLINE), or fetch it with `huggingface-cli download %s --revision %s`, "+
			"or give a local model directory: %w", r, why, c.s.cacheDir, r.Repo, r.Revision, ErrNotCached)
	}
	commit, err := c.rc.readRef(r.Revision)
	if err != nil {
		return "", err
	}
	if commit == "" {
		return "", notCached("is not")
	}
	snap := c.rc.snapshot(commit)
	need := []string{configFile}
	weights := ""
	for _, name := range weightFiles {
		if _, err := os.Stat(filepath.Join(snap, name)); err == nil {
			weights = name
			break
		}
	}
	if weights == "" {
		return "", notCached(fmt.Sprintf("has no weights (none of %s) at commit %s", strings.Join(weightFiles, ", "), commit))
	}
	need = append(need, weights)
	if weights == shardsIndex {
		shards, err := readShards(filepath.Join(snap, shardsIndex))
		if err != nil {
			return "", err
		}
		need = append(need, shards...)
	}
	for _, name := range need {
		p := c.rc.pointer(commit, name)
		if _, err := os.Stat(p); err != nil {
			return "", notCached(fmt.Sprintf("is incomplete (no %s at commit %s)", name, commit))
		}
		if target, err := os.Readlink(p); err == nil {
			blob := target
			if !filepath.IsAbs(blob) {
				blob = filepath.Join(filepath.Dir(p), target)
			}
			if err := checkBlob(blob, -1); err != nil {
				return "", fmt.Errorf("hub: cached %s of %s: %w; delete %s and resolve it again online", name, r, err, blob)
			}
		}
	}
	return snap, nil
}
