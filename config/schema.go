package config

import (
	"reflect"
	"strings"
)

// field is one leaf key of the configuration.
type field struct {
	key   string // dotted, e.g. "train.epochs"
	env   string // environment variable
	typ   reflect.Type
	index []int // path of struct field indexes from Config
}

var (
	fields   = buildSchema()
	byKey    = indexBy(func(f *field) string { return f.key })
	byEnv    = indexBy(func(f *field) string { return f.env })
	sections = map[string]bool{"data": true, "lora": true, "train": true}
)

// envExact are the keys that read an unprefixed variable, as the reference does.
var envExact = map[string]string{
	"base_qa_model":           "BASE_QA_MODEL",
	"fine_tuned_adapter_path": "FINE_TUNED_ADAPTER_PATH",
}

const envPrefix = "LORAQA_"

func buildSchema() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			key := prefix + sf.Tag.Get("mapstructure")
			idx := append(append([]int(nil), index...), i)
			if sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, key+".", idx)
				continue
			}
			out = append(out, field{key: key, env: EnvName(key), typ: sf.Type, index: idx})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

func indexBy(name func(*field) string) map[string]*field {
	m := make(map[string]*field, len(fields))
	for i := range fields {
		m[name(&fields[i])] = &fields[i]
	}
	return m
}

// Keys returns every dotted key, in the order of the config file.
func Keys() []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// EnvName returns the environment variable read for a dotted key.
func EnvName(key string) string {
	if e, ok := envExact[key]; ok {
		return e
	}
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// get returns the value of f in c.
func (f *field) get(c *Config) any {
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index).Interface()
}
