package serve

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loraqa/loraqa/engine"
)

// LoadAdapterRequest is the body of POST /v1/adapters: the name to serve
// the adapter as, and its directory relative to the adapter root.
type LoadAdapterRequest struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// resolveUnderRoot turns a path relative to root into a directory inside
// it: absolute paths and paths with a ".." element are refused (400, as
// the OpenAPI document's pattern says), symbolic links that point out too
// (403), a missing directory is 404, a file 422.
func resolveUnderRoot(root, rel string) (string, *apiError) {
	switch {
	case rel == "":
		return "", errorf(http.StatusBadRequest, "%q is missing or empty", "path")
	case filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, `\`):
		return "", errorf(http.StatusBadRequest, "%q %q is absolute: give a directory relative to the adapter root", "path", rel)
	case strings.ContainsRune(rel, 0):
		return "", errorf(http.StatusBadRequest, "%q holds a NUL byte", "path")
	}
	if slices.Contains(strings.Split(rel, "/"), "..") {
		return "", errorf(http.StatusBadRequest, "%q %q holds a '..' element: give a directory inside the adapter root", "path", rel)
	}
	clean := filepath.Clean(rel)
	real, err := filepath.EvalSymlinks(filepath.Join(root, clean))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errorf(http.StatusNotFound, "%q %q: no such directory under the adapter root", "path", rel)
		}
		return "", errorf(http.StatusBadRequest, "%q %q: %v", "path", rel, trimRoot(err.Error(), root))
	}
	if r, err := filepath.Rel(root, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", errorf(http.StatusForbidden, "%q %q leaves the adapter root (through a symbolic link)", "path", rel)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return "", errorf(http.StatusUnprocessableEntity, "%q %q is not a directory", "path", rel)
	}
	return real, nil
}

// trimRoot keeps the server's directories out of error messages.
func trimRoot(msg, root string) string {
	return strings.ReplaceAll(msg, root+string(filepath.Separator), "")
}

// routeLoadAdapter loads an adapter from under the adapter root and serves
// it under a new name. The model worker injects it (between cycles), so the
// answers in flight are not disturbed; one whose shapes do not fit the base
// is refused (422) and the server goes on as before.
func (s *Server) routeLoadAdapter(w *responseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	var req LoadAdapterRequest
	if e := decodeStrict(body, &req); e != nil {
		writeError(w, e)
		return
	}
	w.adapter = req.Name
	info, e := s.loadAdapter(r.Context(), req)
	if e != nil {
		writeError(w, e)
		return
	}
	s.log.Info("adapter loaded", "adapter", info.Name, "path", req.Path, "r", info.R)
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) loadAdapter(ctx context.Context, req LoadAdapterRequest) (adapterInfo, *apiError) {
	switch {
	case s.opt.AdapterRoot == "":
		return adapterInfo{}, errorf(http.StatusForbidden, "loading adapters is off: start serve with --adapter-root DIR")
	case s.eng.Merged():
		return adapterInfo{}, errorf(http.StatusConflict, "this server folded its adapter into the weights (--merge): it cannot load others")
	case req.Name == "":
		return adapterInfo{}, errorf(http.StatusBadRequest, "%q is missing or empty", "name")
	case !engine.ValidAdapterName(req.Name):
		return adapterInfo{}, errorf(http.StatusBadRequest, "%q %q: use letters, digits, '.', '_' and '-' (at most 64), starting with a letter or digit", "name", req.Name)
	}
	dir, e := resolveUnderRoot(s.opt.AdapterRoot, req.Path)
	if e != nil {
		return adapterInfo{}, e
	}
	info, err := s.eng.LoadAdapter(ctx, req.Name, dir)
	if err == nil {
		return toAdapterInfo(info), nil
	}
	msg := trimRoot(err.Error(), s.opt.AdapterRoot)
	switch {
	case errors.Is(err, engine.ErrAdapterExists):
		return adapterInfo{}, errorf(http.StatusConflict, "%s (DELETE %s/%s unloads it)", msg, pathAdapters, req.Name)
	case errors.Is(err, engine.ErrClosed):
		return adapterInfo{}, errorf(http.StatusServiceUnavailable, "the server is shutting down")
	case errors.Is(err, engine.ErrBadAdapter):
		return adapterInfo{}, errorf(http.StatusUnprocessableEntity, "%s", msg)
	case errors.Is(err, engine.ErrBadInput):
		return adapterInfo{}, errorf(http.StatusBadRequest, "%s", msg)
	}
	return adapterInfo{}, errorf(http.StatusInternalServerError, "%s", msg)
}

// routeUnloadAdapter stops serving an adapter and frees its tensors. New
// requests for it get 404 at once; those already queued are answered first
// (the worker frees it after them).
func (s *Server) routeUnloadAdapter(w *responseWriter, r *http.Request) {
	name := r.PathValue("name")
	w.adapter = name
	err := s.eng.UnloadAdapter(r.Context(), name)
	switch {
	case err == nil:
		s.log.Info("adapter unloaded", "adapter", name)
		writeJSON(w, http.StatusOK, map[string]string{"unloaded": name})
	case errors.Is(err, engine.ErrUnknownAdapter):
		writeError(w, errorf(http.StatusNotFound, "%v (GET %s lists them)", err, pathAdapters))
	case errors.Is(err, engine.ErrBadAdapter):
		writeError(w, errorf(http.StatusConflict, "%v", err))
	case errors.Is(err, engine.ErrClosed):
		writeError(w, errorf(http.StatusServiceUnavailable, "the server is shutting down"))
	default:
		writeError(w, errorf(http.StatusInternalServerError, "%v", err))
	}
}
