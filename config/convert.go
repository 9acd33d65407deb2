package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

var (
	typeString      = reflect.TypeOf("")
	typeInitWeights = reflect.TypeOf(InitWeights(""))
	typeAutoBool    = reflect.TypeOf(AutoBool(""))
	typeInt         = reflect.TypeOf(0)
	typeInt64       = reflect.TypeOf(int64(0))
	typeFloat       = reflect.TypeOf(0.0)
	typeBool        = reflect.TypeOf(false)
	typeStrings     = reflect.TypeOf([]string(nil))
	typeInts        = reflect.TypeOf([]int(nil))
)

// describe names the type of a decoded value for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// want names what a field of type t accepts.
func want(t reflect.Type) string {
	switch t {
	case typeString:
		return "a string"
	case typeInitWeights:
		return `true, false or "gaussian"`
	case typeAutoBool:
		return `true, false or "auto"`
	case typeInt, typeInt64:
		return "an integer"
	case typeFloat:
		return "a number"
	case typeBool:
		return "true or false"
	case typeStrings:
		return "a list of strings"
	case typeInts:
		return "a list of integers"
	}
	return t.String()
}

// fromFile converts a value decoded from a config file (YAML, JSON or
// TOML) to the Go type of f, or says what was wrong.
func (f *field) fromFile(v any) (any, error) {
	bad := func() error { return fmt.Errorf("want %s, got %s", want(f.typ), describe(v)) }
	switch f.typ {
	case typeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case typeInitWeights:
		if s, ok := boolWord(v); ok {
			return InitWeights(s), nil
		}
	case typeAutoBool:
		if s, ok := boolWord(v); ok {
			return AutoBool(s), nil
		}
	case typeInt, typeInt64:
		if n, ok := toInt(v); ok {
			if f.typ == typeInt {
				return int(n), nil
			}
			return n, nil
		}
	case typeFloat:
		if n, ok := toInt(v); ok {
			return float64(n), nil
		}
		if x, ok := v.(float64); ok {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("want a finite number, got %v", x)
			}
			return x, nil
		}
	case typeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case typeStrings, typeInts:
		return f.listFromFile(v)
	}
	return nil, bad()
}

func (f *field) listFromFile(v any) (any, error) {
	var items []any
	switch x := v.(type) {
	case nil:
	case []any:
		items = x
	case []string: // some decoders give typed slices
		return append([]string{}, x...), nil
	default:
		return nil, fmt.Errorf("want %s, got %s", want(f.typ), describe(v))
	}
	if f.typ == typeStrings {
		out := make([]string, len(items))
		for i, it := range items {
			s, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("item %d: want a string, got %s", i, describe(it))
			}
			out[i] = s
		}
		return out, nil
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, ok := toInt(it)
		if !ok {
			return nil, fmt.Errorf("item %d: want an integer, got %s", i, describe(it))
		}
		out[i] = int(n)
	}
	return out, nil
}

// boolWord is the text of a value that is a boolean or a word (InitWeights,
// AutoBool): "true" or "false", or the string in lower case.
func boolWord(v any) (string, bool) {
	switch x := v.(type) {
	case bool:
		return strconv.FormatBool(x), true
	case string:
		return strings.ToLower(x), true
	}
	return "", false
}

// toInt accepts any integer type, and floats with an integral value (JSON
// numbers are floats).
func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int, int8, int16, int32, int64:
		return reflect.ValueOf(x).Int(), true
	case uint, uint8, uint16, uint32, uint64:
		u := reflect.ValueOf(x).Uint()
		return int64(u), u <= math.MaxInt64
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

// fromString converts the text of an environment variable or a --set
// value to the Go type of f. Lists are comma-separated, optionally in
// brackets: "q_lin,v_lin" or "[q_lin, v_lin]"; "" and "[]" are empty.
func (f *field) fromString(s string) (any, error) {
	t := strings.TrimSpace(s)
	switch f.typ {
	case typeString:
		return s, nil
	case typeInitWeights:
		return InitWeights(strings.ToLower(t)), nil
	case typeAutoBool:
		return AutoBool(strings.ToLower(t)), nil
	case typeInt, typeInt64:
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %q", s)
		}
		if f.typ == typeInt {
			return int(n), nil
		}
		return n, nil
	case typeFloat:
		x, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("want a finite number, got %q", s)
		}
		return x, nil
	case typeBool:
		b, err := strconv.ParseBool(t)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", s)
		}
		return b, nil
	}
	items := splitList(t)
	if f.typ == typeStrings {
		return items, nil
	}
	out := make([]int, len(items))
	for i, it := range items {
		n, err := strconv.Atoi(it)
		if err != nil {
			return nil, fmt.Errorf("item %d: want an integer, got %q", i, it)
		}
		out[i] = n
	}
	return out, nil
}

func splitList(s string) []string {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	out := []string{}
	if strings.TrimSpace(s) == "" {
		return out
	}
	for _, it := range strings.Split(s, ",") {
		out = append(out, strings.Trim(strings.TrimSpace(it), `"'`))
	}
	return out
}
