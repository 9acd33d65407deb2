package deploy

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Pruned marks a property of a derived schema whose subtree was left out:
// no manifest sets it. Validate fails on a value there, saying to derive
// the schema again.
const Pruned = "x-loraqa-pruned"

// Prune keeps of a CRD's openAPIV3Schema what the values (the manifests'
// objects of that kind) use: an object keeps every property's name, the
// subtrees of those the values set and, for the others, a stub marked
// Pruned; descriptions are dropped. The result validates those values as
// the whole schema does, and fails on a field the values did not set.
func Prune(schema map[string]any, values []any) map[string]any {
	out := map[string]any{}
	for k, v := range schema {
		switch k {
		case "description", "properties", "items", "additionalProperties":
		default:
			out[k] = v
		}
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		pp := map[string]any{}
		for name, sub := range props {
			var used []any
			for _, v := range values {
				if m, ok := v.(map[string]any); ok {
					if x, ok := m[name]; ok {
						used = append(used, x)
					}
				}
			}
			if len(used) == 0 {
				pp[name] = map[string]any{Pruned: true}
				continue
			}
			pp[name] = Prune(sub.(map[string]any), used)
		}
		out["properties"] = pp
	}
	if items, ok := schema["items"].(map[string]any); ok {
		var elems []any
		for _, v := range values {
			if a, ok := v.([]any); ok {
				elems = append(elems, a...)
			}
		}
		out["items"] = Prune(items, elems)
	}
	if ap, ok := schema["additionalProperties"].(map[string]any); ok {
		var vals []any
		for _, v := range values {
			if m, ok := v.(map[string]any); ok {
				for _, x := range m {
					vals = append(vals, x)
				}
			}
		}
		out["additionalProperties"] = Prune(ap, vals)
	} else if ap, ok := schema["additionalProperties"]; ok {
		out["additionalProperties"] = ap
	}
	return out
}

// Validate checks a value (decoded JSON) against a CRD's structural
// schema as the API server does with strict field validation: types and
// formats of int-or-string, required properties, enums, bounds, lengths and
// item counts, and no field the schema does not name (unless it preserves
// unknown fields). It returns every problem found, each with its path.
func Validate(schema map[string]any, v any) error {
	var errs []error
	validate(schema, v, "", &errs)
	return errors.Join(errs...)
}

func validate(s map[string]any, v any, path string, errs *[]error) {
	fail := func(format string, a ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", strings.TrimPrefix(path, "."), fmt.Sprintf(format, a...)))
	}
	if s[Pruned] == true {
		fail("this field was pruned from the derived schema: derive it again (go run ./cmd/crdschema)")
		return
	}
	if v == nil {
		if s["nullable"] != true {
			fail("null is not allowed")
		}
		return
	}
	if s["x-kubernetes-int-or-string"] == true {
		switch v.(type) {
		case string, float64:
		default:
			fail("want an integer or a string, got %T", v)
		}
		return
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v)
		}
		if !found {
			fail("%v is not one of %v", v, enum)
		}
	}
	switch t, _ := s["type"].(string); t {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			fail("want an object, got %T", v)
			return
		}
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := m[r.(string)]; !ok {
				fail("the required field %q is missing", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if sub, ok := props[k].(map[string]any); ok {
				validate(sub, m[k], path+"."+k, errs)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case map[string]any:
				validate(ap, m[k], path+"."+k, errs)
			default:
				if s["x-kubernetes-preserve-unknown-fields"] != true && ap != true {
					fail("unknown field %q", k)
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			fail("want an array, got %T", v)
			return
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(a)) > n {
			fail("%d items; at most %v", len(a), n)
		}
		if n, ok := s["minItems"].(float64); ok && float64(len(a)) < n {
			fail("%d items; at least %v", len(a), n)
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range a {
				validate(items, x, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("want a string, got %T", v)
			return
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(str))) > n {
			fail("longer than %v", n)
		}
		if n, ok := s["minLength"].(float64); ok && float64(len([]rune(str))) < n {
			fail("shorter than %v", n)
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok {
			fail("want a number, got %T", v)
			return
		}
		if t == "integer" && f != math.Trunc(f) {
			fail("want an integer, got %v", f)
		}
		if n, ok := s["maximum"].(float64); ok && f > n {
			fail("%v is above the maximum %v", f, n)
		}
		if n, ok := s["minimum"].(float64); ok && f < n {
			fail("%v is below the minimum %v", f, n)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("want true or false, got %T", v)
		}
	case "":
		if s["x-kubernetes-preserve-unknown-fields"] != true && len(s) > 0 {
			// A schema without a type in a structural CRD is one that
			// preserves unknown fields or an int-or-string; anything
			// else is not checked here.
			return
		}
	default:
		fail("the schema's type %q is not known to this validator", t)
	}
}
