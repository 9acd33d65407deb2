package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// OpenAPI returns the server's API as an OpenAPI 3.0 document, made from
// the route table (docs/openapi.json is a copy; a test keeps them equal).
func OpenAPI() []byte {
	obj := func(props map[string]any, required ...string) map[string]any {
		o := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			o["required"] = required
		}
		return o
	}
	str := map[string]any{"type": "string"}
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
	v2Tensor := obj(map[string]any{
		"name": str, "datatype": str,
		"shape": map[string]any{"type": "array", "items": map[string]any{"type": "integer"}},
		"data":  map[string]any{"type": "array", "items": map[string]any{}},
	}, "name", "shape", "datatype", "data")
	schemas := map[string]any{
		"Error": obj(map[string]any{"error": str}, "error"),
		"AnswerRequest": obj(map[string]any{
			"question": str, "context": str, "adapter": str,
			"top_k": map[string]any{"type": "integer", "minimum": 1, "maximum": 20},
		}, "question", "context"),
		"Answer": obj(map[string]any{"answer": str, "score": map[string]any{"type": "number"},
			"start": map[string]any{"type": "integer"}, "end": map[string]any{"type": "integer"}}),
		"AnswerResponse": obj(map[string]any{"answers": map[string]any{"type": "array", "items": ref("Answer")},
			"adapter": str, "took_ms": map[string]any{"type": "number"}}),
		"BatchResponse": obj(map[string]any{"results": map[string]any{"type": "array", "items": ref("AnswerResponse")},
			"took_ms": map[string]any{"type": "number"}}),
		"LoadAdapterRequest": obj(map[string]any{"name": str, "path": map[string]any{"type": "string",
			"description": "a directory relative to --adapter-root"}}, "name", "path"),
		"V2Tensor": v2Tensor,
		"V2InferRequest": obj(map[string]any{"id": str, "parameters": map[string]any{"type": "object"},
			"inputs":  map[string]any{"type": "array", "items": ref("V2Tensor")},
			"outputs": map[string]any{"type": "array", "items": obj(map[string]any{"name": str}, "name")}}, "inputs"),
		"V2InferResponse": obj(map[string]any{"model_name": str, "model_version": str, "id": str,
			"outputs": map[string]any{"type": "array", "items": ref("V2Tensor")}}, "model_name", "outputs"),
	}
	bodies := map[string]string{
		"POST " + pathAnswer: "AnswerRequest", "POST " + pathAdapters: "LoadAdapterRequest",
		"POST /v2/models/{model}/infer": "V2InferRequest",
	}
	replies := map[string]string{
		"POST " + pathAnswer: "AnswerResponse", "POST " + pathBatch: "BatchResponse",
		"POST /v2/models/{model}/infer": "V2InferResponse",
	}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		key := rt.method + " " + rt.pattern
		op := map[string]any{"summary": rt.summary, "operationId": operationID(rt)}
		switch rt.access {
		case accessUser:
			op["security"] = []any{map[string]any{"bearer": []string{}}}
			op["description"] = "Needs a bearer token when serve runs with --auth-token-file."
		case accessAdmin:
			op["security"] = []any{map[string]any{"bearer": []string{}}}
			op["description"] = "Needs an admin bearer token (--admin-token-file)."
		case accessMetrics:
			op["description"] = "Needs a bearer token with --metrics-auth."
		}
		var params []any
		for _, seg := range strings.Split(rt.pattern, "/") {
			if strings.HasPrefix(seg, "{") {
				params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true, "schema": str})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if b, ok := bodies[key]; ok {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(b)}}}
		} else if key == "POST "+pathBatch {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"type": "array", "items": ref("AnswerRequest")}}}}
		}
		ok := map[string]any{"description": "OK"}
		switch {
		case rt.pattern == pathMetrics:
			ok["content"] = map[string]any{"text/plain": map[string]any{"schema": str}}
		case replies[key] != "":
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(replies[key])}}
		default:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
		}
		code := "200"
		if key == "POST "+pathAdapters {
			code = "201"
		}
		op["responses"] = map[string]any{code: ok, "default": map[string]any{"description": "an error",
			"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}}
		if paths[rt.pattern] == nil {
			paths[rt.pattern] = map[string]any{}
		}
		paths[rt.pattern][strings.ToLower(rt.method)] = op
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "loraqa serve", "version": "1",
			"description": "Extractive QA with LoRA adapters over one base model (docs/serve.md)."},
		"paths": paths,
		"components": map[string]any{"schemas": schemas,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(doc) // maps of strings, slices and maps: cannot fail
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
	_, _ = w.Write(OpenAPI())
}
