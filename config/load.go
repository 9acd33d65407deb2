package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// MaxFileSize bounds the config file read by Load.
const MaxFileSize = 4 << 20

// LoadOptions are the inputs of Load besides the defaults.
type LoadOptions struct {
	// File is a .yaml, .yml, .json or .toml config file; "" for none.
	File string
	// Sets are "section.key=value" overrides (--set), applied in order.
	Sets []string
	// Env looks up an environment variable; nil means os.LookupEnv.
	// Variables set to the empty string count as unset.
	Env func(string) (string, bool)
	// Environ lists "NAME=value" pairs, used to report unknown LORAQA_
	// variables. nil means os.Environ when Env is nil too, and no check
	// otherwise.
	Environ func() []string
}

// Load resolves the configuration: defaults < file < environment < --set.
// The result is validated; errors name the key and where its value came
// from.
func Load(opts LoadOptions) (*Config, error) {
	var data []byte
	if opts.File != "" {
		var err error
		if data, err = readFile(opts.File); err != nil {
			return nil, err
		}
	}
	return load(opts, data)
}

// load is Load with the file's contents already read.
func load(opts LoadOptions, data []byte) (*Config, error) {
	v := viper.New()
	def := Default()
	for _, f := range fields {
		v.SetDefault(f.key, f.get(&def))
	}
	sources := map[string]string{}
	if opts.File != "" {
		if err := mergeFile(v, opts.File, data, sources); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(v, opts, sources); err != nil {
		return nil, err
	}
	if err := applySets(v, opts.Sets, sources); err != nil {
		return nil, err
	}
	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = false
		dc.DecodeHook = nil
		dc.ZeroFields = true
	})
	if err != nil {
		return nil, fmt.Errorf("decoding the resolved config: %w", err)
	}
	if errs := c.problems(); len(errs) > 0 {
		out := make([]error, len(errs))
		for i, p := range errs {
			src := sources[p.key]
			for _, k := range p.related {
				if src == "" {
					src = sources[k]
				}
			}
			out[i] = p.err(src)
		}
		return nil, errors.Join(out...)
	}
	return &c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// mergeFile decodes a config file, checks its keys and value types, and
// merges it into v.
func mergeFile(v *viper.Viper, path string, data []byte, sources map[string]string) error {
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	switch ext {
	case "yaml", "yml", "json", "toml":
	default:
		return fmt.Errorf("config file %s: unsupported extension %q (want .yaml, .yml, .json or .toml)", path, filepath.Ext(path))
	}
	fv := viper.New()
	fv.SetConfigType(ext)
	if err := fv.ReadConfig(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	values, err := checkFile(path, fv.AllSettings())
	if err != nil {
		return err
	}
	nested := map[string]any{}
	for key, val := range values {
		sources[key] = "config file " + path
		section, leaf, ok := strings.Cut(key, ".")
		if !ok {
			nested[key] = val
			continue
		}
		m, _ := nested[section].(map[string]any)
		if m == nil {
			m = map[string]any{}
			nested[section] = m
		}
		m[leaf] = val
	}
	if err := v.MergeConfigMap(nested); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// convertKey converts val, the value of key from where (a config file or a
// --set), to the Go type of key's field with from (field.fromFile or
// field.fromString); an unknown key or a value of the wrong type is an error
// that says where.
func convertKey[V any](where, key string, val V, from func(*field, V) (any, error)) (any, error) {
	f := byKey[key]
	if f == nil {
		return nil, unknownKey(where, key)
	}
	conv, err := from(f, val)
	if err != nil {
		return nil, errorf(ErrType, "%s: key %q: %v", where, key, err)
	}
	return conv, nil
}

// checkFile flattens the decoded file into dotted keys with values of the
// right Go types, reporting every unknown key and wrong type.
func checkFile(path string, raw map[string]any) (map[string]any, error) {
	where := "config file " + path
	out := map[string]any{}
	var errs []error
	put := func(key string, val any) {
		conv, err := convertKey(where, key, val, (*field).fromFile)
		if err != nil {
			errs = append(errs, err)
			return
		}
		out[key] = conv
	}
	for _, k := range sortedKeys(raw) {
		val := raw[k]
		if !sections[k] {
			put(k, val)
			continue
		}
		if val == nil {
			continue
		}
		m, ok := val.(map[string]any)
		if !ok {
			errs = append(errs, errorf(ErrType, "%s: key %q: want a mapping of %s.* keys, got %s", where, k, k, describe(val)))
			continue
		}
		for _, k2 := range sortedKeys(m) {
			put(k+"."+k2, m[k2])
		}
	}
	return out, errors.Join(errs...)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// applyEnv sets the keys whose environment variables are set.
func applyEnv(v *viper.Viper, opts LoadOptions, sources map[string]string) error {
	lookup, environ := opts.Env, opts.Environ
	if lookup == nil {
		lookup = os.LookupEnv
		if environ == nil {
			environ = os.Environ
		}
	}
	var errs []error
	if environ != nil {
		errs = append(errs, checkEnviron(environ())...)
	}
	for i := range fields {
		f := &fields[i]
		s, ok := lookup(f.env)
		if !ok || s == "" {
			continue
		}
		val, err := f.fromString(s)
		if err != nil {
			errs = append(errs, errorf(ErrType, "environment variable %s (key %q): %v", f.env, f.key, err))
			continue
		}
		v.Set(f.key, val)
		sources[f.key] = "environment variable " + f.env
	}
	return errors.Join(errs...)
}

// checkEnviron reports LORAQA_ variables that look like config keys but
// are not.
func checkEnviron(environ []string) []error {
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || byEnv[name] != nil {
			continue
		}
		if s, ok := suggestEnv(name); ok {
			errs = append(errs, errorf(ErrUnknownKey, "environment variable %s is not a config key; did you mean %s?", name, s))
		}
	}
	return errs
}

// suggestEnv returns the known variable an unknown LORAQA_ name most
// likely meant, and false when the name does not look like a config key.
func suggestEnv(name string) (string, bool) {
	rest := strings.TrimPrefix(name, envPrefix)
	for _, f := range fields { // a key's name without (or with the wrong) section
		leaf := strings.ToUpper(lastPart(f.key, "."))
		if rest == leaf || strings.HasSuffix(rest, "_"+leaf) && strings.Count(rest, "_") == strings.Count(leaf, "_")+1 {
			return f.env, true
		}
	}
	envs := make([]string, len(fields))
	for i, f := range fields {
		envs[i] = f.env
	}
	best, _ := nearest(name, envs, "")
	if Levenshtein(name, best) <= 2 {
		return best, true
	}
	for s := range sections {
		if strings.HasPrefix(rest, strings.ToUpper(s)+"_") {
			return best, true
		}
	}
	return "", false
}

// applySets applies "key=value" overrides in order.
func applySets(v *viper.Viper, sets []string, sources map[string]string) error {
	var errs []error
	for _, s := range sets {
		key, val, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		where := fmt.Sprintf("--set %q", s)
		if !ok {
			errs = append(errs, errorf(ErrInvalid, "%s: want section.key=value", where))
			continue
		}
		conv, err := convertKey(where, key, val, (*field).fromString)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v.Set(key, conv)
		sources[key] = "--set"
	}
	return errors.Join(errs...)
}
