package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/loraqa/loraqa/engine"
)

// defaultOpenAPI returns the server's API, as served with DefaultOptions and the
// engine's default answers per question, as an OpenAPI 3.0 document made
// from the route table (docs/openapi.json is a copy; a test keeps them
// equal). GET /openapi.json serves the document of the server's own limits.
func defaultOpenAPI() []byte {
	o := DefaultOptions()
	return openAPI(limits{maxContext: o.MaxContext, maxBatchItems: o.MaxBatchItems, maxTopK: engine.DefaultOptions().Post.NBestSize}, false, false)
}

// nonBlank matches a string holding a character other than white space
// (Go's unicode.IsSpace, which strings.TrimSpace trims): the server's rule
// for questions and contexts.
const nonBlank = `[^\t\n\v\f\r \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]`

// loadPathPattern is the rule for the path of POST /v1/adapters: relative
// (not starting with '/' or '\'), no ".." element, no NUL byte.
const loadPathPattern = `^(?![/\\])(?!(.*/)?\.\.(/|$))[^\x{0}]+$`

// jsRegexp writes a pattern with \x{...} escapes (as Go's regexp reads
// them) in the \uXXXX form of ECMA 262 and Python, which OpenAPI tools use.
func jsRegexp(p string) string {
	var b strings.Builder
	for {
		i := strings.Index(p, `\x{`)
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		j := strings.IndexByte(p[i:], '}')
		b.WriteString(p[:i] + `\u` + strings.Repeat("0", 4-(j-3)) + p[i+3:i+j])
		p = p[i+j+1:]
	}
}

// openAPI is the document of a server with the limits lim, and bearer
// tokens required on the user routes (userAuth) and on /metrics
// (metricsAuth); without them those routes take a token but need none. Every rule the
// server checks on a single field is in it (types, required fields,
// lengths, patterns, item counts, enums, nullability, no unknown fields);
// rules between fields (a v2 tensor's data against its shape, the binary
// data sizes against the body) are in the descriptions, as OpenAPI 3.0's
// schemas cannot say them.
func openAPI(lim limits, userAuth, metricsAuth bool) []byte {
	type m = map[string]any
	obj := func(props m, required ...string) m {
		o := m{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			o["required"] = required
		}
		return o
	}
	nullable := func(s m) m {
		out := m{"nullable": true}
		for k, v := range s {
			out[k] = v
		}
		return out
	}
	str := m{"type": "string"}
	integer := m{"type": "integer"}
	number := m{"type": "number"}
	boolean := m{"type": "boolean"}
	arr := func(items any) m { return m{"type": "array", "items": items} }
	ref := func(name string) m { return m{"$ref": "#/components/schemas/" + name} }
	enum := func(vals ...string) m { return m{"type": "string", "enum": vals} }
	adapterName := m{"type": "string", "pattern": engine.AdapterNamePattern,
		"description": "an adapter name: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit"}
	text := m{"type": "string", "pattern": jsRegexp(nonBlank), "description": "not empty nor only white space"}
	context := m{"type": "string", "pattern": jsRegexp(nonBlank), "maxLength": lim.maxContext,
		"description": "not empty nor only white space; at most the server's --max-context characters (413 beyond)"}
	outputNames := []string{}
	for _, o := range v2Outputs {
		outputNames = append(outputNames, o.Name)
	}
	tensorMeta := obj(m{"name": str, "datatype": str, "shape": arr(integer)}, "name", "datatype", "shape")
	example := func(schema m, v any) m { schema["example"] = v; return schema }
	schemas := m{
		"Error": obj(m{"error": m{"type": "string", "minLength": 1}}, "error"),
		"AnswerRequest": func() m {
			t := example(obj(m{
				"question": text, "context": context,
				"passages": m{"type": "array", "items": context, "minItems": 1, "maxItems": lim.maxBatchItems,
					"description": "instead of context: the passages to answer from (a retriever's top k); " +
						"the answers are the best spans of all of them, each naming its passage"},
				"adapter": nullable(m{"type": "string", "pattern": engine.AdapterNamePattern,
					"description": "the adapter to answer with; absent or null: the default one (404 for one not served)"}),
				"top_k": nullable(m{"type": "integer", "minimum": 1, "maximum": lim.maxTopK,
					"description": "how many answers, best first; absent or null: 1"}),
			}, "question"), m{"question": "What was the revenue in 2019?", "context": "The revenue was $5 million in 2019."})
			t["oneOf"] = []any{m{"required": []string{"context"}}, m{"required": []string{"passages"}}}
			t["description"] = "A question with a context, or with passages (not both)."
			return t
		}(),
		"Answer": obj(m{"answer": str, "score": number, "start": integer, "end": integer,
			"passage": m{"type": "integer", "minimum": 0,
				"description": "for a question with passages: the passage of the answer (start and end are offsets into it; " +
					"score the softmax over the n best spans of all passages)"},
			"no_answer":       m{"type": "boolean", "description": "SQuAD 2.0 adapters only: the model abstains (answer \"\", start and end -1); absent otherwise"},
			"null_score":      m{"type": "number", "description": "SQuAD 2.0 adapters only, on the first answer: the null answer's score ([CLS] start+end logits)"},
			"best_span_score": m{"type": "number", "description": "SQuAD 2.0 adapters only, on the first answer: the best span's start+end logits; no_answer when null_score − best_span_score > the adapter's null_score_diff_threshold"},
		}, "answer", "score", "start", "end"),
		"AnswerResponse": obj(m{"answers": m{"type": "array", "items": ref("Answer"), "minItems": 1},
			"adapter": str, "took_ms": number}, "answers", "adapter", "took_ms"),
		"BatchRequest":  m{"type": "array", "items": ref("AnswerRequest"), "minItems": 1, "maxItems": lim.maxBatchItems},
		"BatchResponse": obj(m{"results": arr(ref("AnswerResponse")), "took_ms": number}, "results", "took_ms"),
		"AdapterInfo": obj(m{"name": str, "dir": str, "r": integer, "lora_alpha": number,
			"target_modules": arr(str), "default": boolean, "merged": boolean,
			"squad_v2": obj(m{"null_score_diff_threshold": number}, "null_score_diff_threshold")},
			"name", "dir", "r", "lora_alpha", "default", "merged"),
		"AdapterList": obj(m{"base": str, "device": str, "default": str, "fused": boolean,
			"adapters": arr(ref("AdapterInfo"))}, "base", "device", "default", "fused", "adapters"),
		"LoadAdapterRequest": func() m {
			t := obj(m{"name": adapterName, "path": m{"type": "string", "pattern": jsRegexp(loadPathPattern),
				"description": "a directory relative to --adapter-root: not absolute, no '..' element, no NUL; " +
					"a symbolic link out of the root is refused (400), a missing directory is 404"}}, "name", "path")
			t["example"] = m{"name": "finance-v2", "path": "finance/v2"}
			return t
		}(),
		"Unloaded":         obj(m{"unloaded": str}, "unloaded"),
		"Health":           obj(m{"status": enum("ok")}, "status"),
		"V2ServerMetadata": obj(m{"name": str, "version": str, "extensions": arr(str)}, "name", "version", "extensions"),
		"V2Live":           obj(m{"live": boolean}, "live"),
		"V2Ready":          obj(m{"ready": boolean}, "ready"),
		"V2ModelReady":     obj(m{"name": str, "ready": boolean}, "name", "ready"),
		"V2TensorMetadata": tensorMeta,
		"V2ModelMetadata": obj(m{"name": str, "versions": arr(str), "platform": str,
			"inputs": arr(ref("V2TensorMetadata")), "outputs": arr(ref("V2TensorMetadata"))},
			"name", "versions", "platform", "inputs", "outputs"),
		"V2InputTensor": func() m {
			t := obj(m{
				"name":     enum("question", "context", "passages"),
				"datatype": enum("BYTES"),
				"shape": m{"type": "array", "minItems": 1, "maxItems": 2,
					"items": m{"type": "integer", "minimum": 1, "maximum": lim.maxBatchItems}},
				"parameters": nullable(obj(m{"binary_data_size": m{"type": "integer", "minimum": 0}})),
				"data":       nullable(m{"type": "array", "items": str, "minItems": 1, "maxItems": lim.maxBatchItems * lim.maxBatchItems}),
			}, "name", "datatype", "shape")
			t["description"] = "A BYTES tensor of N strings, shape [N] or [N, 1]: its data a flat list of N strings, " +
				"or (the binary tensor data extension) parameters.binary_data_size bytes after the JSON part of the body, " +
				"each element a 4-byte little-endian length and that many bytes of UTF-8. Both inputs have the same N. " +
				"passages, instead of context, has shape [N, P]: row i (row-major) holds question i's passages, " +
				"empty strings padding the shorter rows; the outputs passage (each answer's passage) and no_answer (BOOL: all passages abstain, SQuAD 2.0 adapters) are then sent too."
			return t
		}(),
		"V2RequestedOutput": obj(m{"name": enum(outputNames...),
			"parameters": nullable(obj(m{"binary_data": boolean}))}, "name"),
		"V2InferRequest": func() m {
			t := obj(m{
				"id": nullable(str), "model_name": nullable(str), "model_version": nullable(str),
				"parameters": nullable(obj(m{"binary_data_output": boolean})),
				"inputs":     m{"type": "array", "items": ref("V2InputTensor"), "minItems": 1, "maxItems": 2},
				"outputs":    nullable(arr(ref("V2RequestedOutput"))),
			}, "inputs")
			t["example"] = m{"id": "42", "inputs": []any{
				m{"name": "question", "shape": []int{1}, "datatype": "BYTES", "data": []string{"What was the revenue in 2019?"}},
				m{"name": "context", "shape": []int{1}, "datatype": "BYTES", "data": []string{"The revenue was $5 million in 2019."}}}}
			t["description"] = "The inputs question and context (or passages), each once. model_name, when given, is the path's model; " +
				"model_version the path's version, or \"1\". Each output named once; none named: all of them."
			return t
		}(),
		"V2OutputTensor": obj(m{"name": enum(outputNames...), "shape": arr(integer),
			"datatype":   enum("BYTES", "FP32", "INT64", "BOOL"),
			"parameters": obj(m{"binary_data_size": m{"type": "integer", "minimum": 0}}, "binary_data_size"),
			"data":       arr(m{})}, "name", "shape", "datatype"),
		"V2InferResponse": obj(m{"model_name": str, "model_version": str, "id": str,
			"outputs": arr(ref("V2OutputTensor"))}, "model_name", "model_version", "id", "outputs"),
	}
	errReply := m{"description": "an error", "content": m{"application/json": m{"schema": ref("Error")}}}
	paths := map[string]m{}
	for _, rt := range routes {
		op := m{"summary": rt.summary, "operationId": operationID(rt)}
		bearer, optional := m{"bearer": []string{}}, m{}
		switch rt.access {
		case accessUser:
			op["security"] = []any{bearer, optional}
			if userAuth {
				op["security"] = []any{bearer}
			}
			op["description"] = "Needs a bearer token when serve runs with --auth-token-file."
		case accessAdmin:
			op["security"] = []any{bearer}
			op["description"] = "Needs an admin bearer token (--admin-token-file)."
		case accessMetrics:
			op["security"] = []any{bearer, optional}
			if metricsAuth {
				op["security"] = []any{bearer}
			}
			op["description"] = "Needs a bearer token with --metrics-auth."
		}
		var params []any
		for _, seg := range strings.Split(rt.pattern, "/") {
			if !strings.HasPrefix(seg, "{") {
				continue
			}
			name := strings.Trim(seg, "{}")
			schema := adapterName
			if name == "version" {
				schema = m{"type": "string", "enum": []string{v2Version}, "description": "a model version: every model has one, \"1\" (404 for others)"}
			}
			params = append(params, m{"name": name, "in": "path", "required": true, "schema": schema})
		}
		v2Infer := rt.body == "V2InferRequest"
		if v2Infer {
			params = append(params, m{"name": headerContentLength, "in": "header", "required": false,
				"description": "the binary tensor data extension: the length of the JSON part of the body, binary tensor data following it",
				"schema":      m{"type": "integer", "minimum": 0}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.body != "" {
			content := m{"application/json": m{"schema": ref(rt.body)}}
			if v2Infer {
				content["application/octet-stream"] = m{"schema": m{"type": "string", "format": "binary",
					"description": "the JSON request, then binary tensor data (header " + headerContentLength + ")"}}
			}
			op["requestBody"] = m{"required": true, "content": content}
		}
		ok := m{"description": "OK"}
		switch {
		case rt.pattern == pathMetrics:
			ok["content"] = m{"text/plain": m{"schema": str}}
		case rt.pattern == pathOpenAPI:
			ok["content"] = m{"application/json": m{"schema": m{"type": "object"}}}
		case v2Infer:
			ok["content"] = m{"application/json": m{"schema": ref(rt.reply)},
				"application/octet-stream": m{"schema": m{"type": "string", "format": "binary",
					"description": "the JSON response, then the outputs asked for as binary data"}}}
			ok["headers"] = m{headerContentLength: m{"description": "with binary outputs: the length of the JSON part",
				"schema": m{"type": "integer", "minimum": 0}}}
		default:
			ok["content"] = m{"application/json": m{"schema": ref(rt.reply)}}
		}
		code := "200"
		if rt.ok != 0 {
			code = strconv.Itoa(rt.ok)
		}
		replies := m{code: ok, "default": errReply}
		if strings.Contains(rt.summary, "503 while draining") {
			replies["503"] = m{"description": "not ready: the server is shutting down",
				"content": m{"application/json": m{"schema": ref("Error")}}}
		}
		op["responses"] = replies
		if paths[rt.pattern] == nil {
			paths[rt.pattern] = m{}
		}
		paths[rt.pattern][strings.ToLower(rt.method)] = op
	}
	doc := m{
		"openapi": "3.0.3",
		"info": m{"title": "loraqa serve", "version": "1",
			"description": "Extractive QA with LoRA adapters over one base model (docs/serve.md)."},
		"paths": paths,
		"components": m{"schemas": schemas,
			"securitySchemes": m{"bearer": m{"type": "http", "scheme": "bearer"}}},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(doc) // maps of strings, numbers, slices and maps: cannot fail
	return b.Bytes()
}

func operationID(rt route) string {
	id := strings.ToLower(rt.method)
	for _, seg := range strings.Split(rt.pattern, "/") {
		seg = strings.Trim(seg, "{}.")
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, ".", "_"), "-", "_")
		if seg != "" {
			id += "_" + seg
		}
	}
	return id
}

func (s *Server) routeOpenAPI(w *responseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPI(s.lim, len(s.users) > 0, s.opt.MetricsAuth && len(s.users) > 0))
}
