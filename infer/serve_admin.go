package infer

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// LoadAdapterRequest is the body of POST /v1/adapters: the name to serve
// the adapter as, and its directory relative to the adapter root.
type LoadAdapterRequest struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// resolveUnderRoot turns a path relative to root into a directory inside
// it: absolute paths, ".." that climbs out and symbolic links that point out
// are refused (400), a missing directory is 404.
func resolveUnderRoot(root, rel string) (string, *apiError) {
	switch {
	case rel == "":
		return "", errorf(http.StatusBadRequest, "%q is missing or empty", "path")
	case filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, `\`):
		return "", errorf(http.StatusBadRequest, "%q %q is absolute: give a directory relative to the adapter root", "path", rel)
	case strings.ContainsRune(rel, 0):
		return "", errorf(http.StatusBadRequest, "%q holds a NUL byte", "path")
	}
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", errorf(http.StatusBadRequest, "%q %q leaves the adapter root", "path", rel)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, clean))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errorf(http.StatusNotFound, "%q %q: no such directory under the adapter root", "path", rel)
		}
		return "", errorf(http.StatusBadRequest, "%q %q: %v", "path", rel, trimRoot(err.Error(), root))
	}
	if r, err := filepath.Rel(root, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", errorf(http.StatusBadRequest, "%q %q leaves the adapter root (through a symbolic link)", "path", rel)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return "", errorf(http.StatusBadRequest, "%q %q is not a directory", "path", rel)
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
func (s *Server) routeLoadAdapter(w *responseWriter, r *http.Request, _ map[string]string) {
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
	sv, e := s.loadAdapter(req)
	if e != nil {
		writeError(w, e)
		return
	}
	s.log.Info("adapter loaded", "adapter", sv.Name, "path", req.Path, "r", sv.adapter.Config.R)
	writeJSON(w, http.StatusCreated, s.adapterInfo(sv, false))
}

func (s *Server) loadAdapter(req LoadAdapterRequest) (*served, *apiError) {
	switch {
	case s.opt.AdapterRoot == "":
		return nil, errorf(http.StatusForbidden, "loading adapters is off: start serve with --adapter-root DIR")
	case s.opt.Merge:
		return nil, errorf(http.StatusConflict, "this server folded its adapter into the weights (--merge): it cannot load others")
	case req.Name == "":
		return nil, errorf(http.StatusBadRequest, "%q is missing or empty", "name")
	case !adapterName.MatchString(req.Name):
		return nil, errorf(http.StatusBadRequest, "%q %q: use letters, digits, '.', '_' and '-' (at most 64)", "name", req.Name)
	}
	dir, e := resolveUnderRoot(s.opt.AdapterRoot, req.Path)
	if e != nil {
		return nil, e
	}
	if _, e := s.lookup(req.Name); e == nil && req.Name != "" {
		return nil, errorf(http.StatusConflict, "adapter %q is already served: unload it first (DELETE %s/%s)", req.Name, pathAdapters, req.Name)
	}
	cfg, err := peft.ReadConfig(dir)
	if err != nil {
		return nil, errorf(http.StatusUnprocessableEntity, "adapter %q: %s", req.Name, trimRoot(err.Error(), s.opt.AdapterRoot))
	}
	if cfg.Bias != "none" {
		return nil, errorf(http.StatusUnprocessableEntity, "adapter %q trains the base model's biases (bias %q): it cannot share the base with other adapters", req.Name, cfg.Bias)
	}
	s.amu.RLock()
	for _, o := range s.models {
		if o.adapter != nil && o.adapter.Config.Bias != "none" {
			s.amu.RUnlock()
			return nil, errorf(http.StatusConflict, "adapter %q trains the base model's biases: this server cannot load others", o.Name)
		}
	}
	s.amu.RUnlock()
	tok, err := s.tokenizerFor(dir)
	if err != nil {
		return nil, errorf(http.StatusUnprocessableEntity, "adapter %q: %s", req.Name, trimRoot(err.Error(), s.opt.AdapterRoot))
	}
	sv := &served{Name: req.Name, Dir: dir, tok: tok}
	if _, err := s.featurize(sv, Query{Question: "what", Context: "this"}); err != nil {
		return nil, errorf(http.StatusUnprocessableEntity, "adapter %q: %v", req.Name, err)
	}
	err = s.onWorker(func() error {
		if err := s.detach(); err != nil {
			return err
		}
		a, err := peft.Load(dir, s.model)
		if err != nil {
			return err
		}
		if err := a.Detach(); err != nil {
			a.Drop()
			return err
		}
		sv.adapter = a
		return nil
	})
	switch {
	case errors.Is(err, errShuttingDown):
		return nil, errorf(http.StatusServiceUnavailable, "the server is shutting down")
	case err != nil:
		return nil, errorf(http.StatusUnprocessableEntity, "adapter %q does not fit the base model: %s", req.Name, trimRoot(err.Error(), s.opt.AdapterRoot))
	}
	s.amu.Lock()
	if s.byName[req.Name] != nil { // loaded meanwhile by another call
		s.amu.Unlock()
		_ = s.onWorkerDrop(sv)
		return nil, errorf(http.StatusConflict, "adapter %q is already served", req.Name)
	}
	s.models = append(s.models, sv)
	s.byName[sv.Name] = sv
	s.amu.Unlock()
	return sv, nil
}

// onWorkerDrop frees an adapter on the worker: it is attached (so that
// Drop finds its layers), dropped, and the model left without adapter.
func (s *Server) onWorkerDrop(sv *served) error {
	return s.onWorker(func() error {
		sv.gone = true
		if err := s.activate(sv); err != nil {
			return err
		}
		sv.adapter.Drop()
		s.active = nil
		torch.ReleaseMemory()
		return nil
	})
}

// tokenizerFor is the adapter directory's tokenizer, else the base's.
func (s *Server) tokenizerFor(dir string) (*data.Tokenizer, error) {
	if hasTokenizer(dir) {
		return data.LoadTokenizer(dir)
	}
	s.amu.RLock()
	defer s.amu.RUnlock()
	for _, sv := range s.models {
		if sv.tok != nil && !hasTokenizer(sv.Dir) {
			return sv.tok, nil
		}
	}
	return data.LoadTokenizer(s.baseDir)
}

// routeUnloadAdapter stops serving an adapter and frees its tensors. New
// requests for it get 404 at once; those already queued are answered first
// (the worker frees it after them).
func (s *Server) routeUnloadAdapter(w *responseWriter, _ *http.Request, params map[string]string) {
	name := params["name"]
	w.adapter = name
	s.amu.Lock()
	sv := s.byName[name]
	switch {
	case sv == nil:
		s.amu.Unlock()
		writeError(w, errorf(http.StatusNotFound, "unknown adapter %q (GET %s lists them)", name, pathAdapters))
		return
	case sv == s.models[0]:
		s.amu.Unlock()
		writeError(w, errorf(http.StatusConflict, "adapter %q is the default: it cannot be unloaded", name))
		return
	case s.opt.Merge:
		s.amu.Unlock()
		writeError(w, errorf(http.StatusConflict, "adapter %q is merged into the weights: it cannot be unloaded", name))
		return
	}
	delete(s.byName, name)
	for i, o := range s.models {
		if o == sv {
			s.models = append(s.models[:i:i], s.models[i+1:]...)
			break
		}
	}
	s.amu.Unlock()
	err := s.onWorkerDrop(sv)
	if err != nil && !errors.Is(err, errShuttingDown) {
		writeError(w, errorf(http.StatusInternalServerError, "unloading adapter %q: %v", name, err))
		return
	}
	if errors.Is(err, errShuttingDown) { // Close frees it: put it back in the list
		s.amu.Lock()
		s.models = append(s.models, sv)
		s.amu.Unlock()
		writeError(w, errorf(http.StatusServiceUnavailable, "the server is shutting down"))
		return
	}
	s.log.Info("adapter unloaded", "adapter", name)
	writeJSON(w, http.StatusOK, map[string]string{"unloaded": name})
}
