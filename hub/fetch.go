package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// fileMeta is what a HEAD on the resolve endpoint tells about a file.
type fileMeta struct {
	name     string
	commit   string
	etag     string
	size     int64 // -1 when unknown
	location string
}

var (
	etagRE   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

const maxRedirects = 5

// resolveURL is the endpoint URL of a file at a revision.
func (c *client) resolveURL(repo, rev, name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return c.s.endpoint.String() + "/" + repo + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(parts, "/")
}

func (c *client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	req.Header.Set("User-Agent", "loraqa (Go net/http)")
	req.Header.Set("Accept-Encoding", "identity")
	if c.s.token != "" && req.URL.Host == c.s.endpoint.Host {
		req.Header.Set("Authorization", "Bearer "+c.s.token)
	}
	return req, nil
}

// head asks the hub about a file, following relative redirects (renamed
// repositories) but not absolute ones (LFS files redirect to a CDN; the
// metadata is on the redirect itself).
func (c *client) head(ctx context.Context, repo, rev, name string) (*fileMeta, error) {
	u := c.resolveURL(repo, rev, name)
	for range maxRedirects {
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return nil, err
		}
		resp, err := c.s.client.Do(req)
		if err != nil {
			return nil, &netError{fmt.Errorf("hub: HEAD %s: %w", u, err)}
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return metaFrom(resp, name, u)
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return nil, fmt.Errorf("hub: HEAD %s: redirect without a usable Location: %w", u, err)
			}
			if raw := resp.Header.Get("Location"); strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
				u = loc.String()
				continue
			}
			return metaFrom(resp, name, loc.String())
		default:
			return nil, statusErr(resp, u)
		}
	}
	return nil, fmt.Errorf("hub: HEAD %s: more than %d redirects", u, maxRedirects)
}

func metaFrom(resp *http.Response, name, location string) (*fileMeta, error) {
	m := &fileMeta{name: name, location: location, size: -1}
	where := resp.Request.URL.String()
	m.commit = resp.Header.Get("X-Repo-Commit")
	if !commitRE.MatchString(m.commit) {
		return nil, fmt.Errorf("hub: %s: missing or malformed X-Repo-Commit header %q; is the endpoint a Hugging Face hub?", where, m.commit)
	}
	etag := resp.Header.Get("X-Linked-Etag")
	if etag == "" {
		etag = resp.Header.Get("ETag")
	}
	m.etag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	if !etagRE.MatchString(m.etag) || m.etag == "." || m.etag == ".." {
		return nil, fmt.Errorf("hub: %s: missing or unusable ETag %q", where, etag)
	}
	size := resp.Header.Get("X-Linked-Size")
	if size == "" {
		size = resp.Header.Get("Content-Length")
	}
	if size != "" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("hub: %s: malformed size header %q", where, size)
		}
		m.size = n
	}
	return m, nil
}

// statusErr turns an error response into a statusError of the right kind.
func statusErr(resp *http.Response, u string) error {
	e := &statusError{
		url:       u,
		code:      resp.StatusCode,
		errorCode: resp.Header.Get("X-Error-Code"),
		message:   resp.Header.Get("X-Error-Message"),
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && (e.errorCode == "" || e.errorCode == "EntryNotFound"):
		e.kind = errEntryNotFound
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized ||
		e.errorCode == "RepoNotFound" || e.errorCode == "RevisionNotFound" || e.errorCode == "GatedRepo":
		e.kind = ErrNotFound
	}
	return e
}

// download fetches m into blob, checking its size and (for a sha256 ETag)
// its hash; the data goes through internal/atomicfile (a hidden temporary
// file beside blob, renamed into place only when both checks pass).
func (c *client) download(ctx context.Context, m *fileMeta, blob string) error {
	req, err := c.newRequest(ctx, http.MethodGet, m.location)
	if err != nil {
		return err
	}
	dl := *c.s.client
	dl.CheckRedirect = nil // content may redirect again (CDN); Go drops auth across hosts
	resp, err := dl.Do(req)
	if err != nil {
		return &netError{fmt.Errorf("hub: GET %s: %w", m.location, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusErr(resp, m.location)
	}
	// dlErr is the download's own failure, returned as it is (a netError or
	// ErrCorrupt); other errors are atomicfile's, about the file.
	var dlErr error
	err = atomicfile.WriteFunc(blob, func(f io.Writer) error {
		hash := sha256.New()
		var body io.Reader = resp.Body
		if m.size >= 0 {
			body = io.LimitReader(body, m.size+1) // a longer answer is an error, not a full disk
		}
		w := io.MultiWriter(f, hash)
		var prog *progress
		if c.s.progress != nil && (m.size < 0 || m.size >= progressMinSize) {
			prog = newProgress(c.s.progress, m.name, m.size)
			w = io.MultiWriter(w, prog)
		}
		n, err := io.Copy(w, body)
		if prog != nil {
			prog.finish(err == nil)
		}
		switch {
		case err != nil:
			dlErr = &netError{fmt.Errorf("hub: downloading %s: %w", m.location, err)}
		case m.size >= 0 && n != m.size:
			dlErr = fmt.Errorf("hub: downloading %s: %w: got %d bytes, want %d", m.name, ErrCorrupt, n, m.size)
		case sha256RE.MatchString(m.etag):
			if got := hex.EncodeToString(hash.Sum(nil)); got != m.etag {
				dlErr = fmt.Errorf("hub: downloading %s: %w: sha256 %s, want %s", m.name, ErrCorrupt, got, m.etag)
			}
		}
		return dlErr
	})
	if dlErr != nil {
		return dlErr
	}
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}
