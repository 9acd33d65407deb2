package hub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeHub serves repositories the way huggingface.co's resolve endpoint
// does: small files answer 200 with a git-sha1 ETag, LFS files (*.bin,
// *.safetensors) redirect to a CDN path with X-Linked-Etag (their sha256)
// and X-Linked-Size.
type fakeHub struct {
	t      *testing.T
	srv    *httptest.Server
	commit string

	mu       sync.Mutex
	repos    map[string]map[string][]byte
	private  map[string]string // repo -> required token
	renamed  map[string]string // old repo -> new repo
	corrupt  map[string]bool   // file names served with a flipped byte
	requests []string          // "METHOD path"
	auth     []string          // Authorization header of each request
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{
		t:       t,
		commit:  strings.Repeat("ab12", 10),
		repos:   map[string]map[string][]byte{},
		private: map[string]string{},
		renamed: map[string]string{},
		corrupt: map[string]bool{},
	}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func isLFS(name string) bool {
	return strings.HasSuffix(name, ".bin") || strings.HasSuffix(name, ".safetensors")
}

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (h *fakeHub) add(repo string, files map[string][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[repo] = files
}

func (h *fakeHub) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.requests...)
}

func (h *fakeHub) count(substr string) int {
	n := 0
	for _, r := range h.log() {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r.Method+" "+r.URL.Path)
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()

	if sha, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		h.serveCDN(w, r, sha)
		return
	}
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/")
	rev, name, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	files, exists := h.repos[repo]
	token := h.private[repo]
	newName, moved := h.renamed[repo]
	h.mu.Unlock()
	if moved {
		w.Header().Set("Location", "/"+newName+"/resolve/"+rest)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if !exists || (token != "" && r.Header.Get("Authorization") != "Bearer "+token) {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rev != "main" && rev != h.commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	data, found := files[name]
	w.Header().Set("X-Repo-Commit", h.commit)
	if !found {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if isLFS(name) {
		sha := sha256Hex(data)
		w.Header().Set("X-Linked-Etag", `"`+sha+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
		w.Header().Set("Location", h.srv.URL+"/cdn/"+sha)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitSHA1(data)+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodGet {
		w.Write(data)
	}
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request, sha string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, files := range h.repos {
		for name, data := range files {
			if isLFS(name) && sha256Hex(data) == sha {
				out := append([]byte(nil), data...)
				if h.corrupt[name] {
					out[len(out)/2] ^= 0xff
				}
				w.Header().Set("Content-Length", strconv.Itoa(len(out)))
				w.Write(out)
				return
			}
		}
	}
	http.NotFound(w, r)
}
