package serve

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// MinTokenLength is the shortest bearer token accepted in a token file.
const MinTokenLength = 16

// ReadTokens reads bearer tokens from a file: one per line; blank lines and
// lines starting with '#' are skipped. A file without tokens, or a token
// shorter than MinTokenLength or holding spaces, is an error (that never
// shows the token).
func ReadTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(t) < MinTokenLength || strings.ContainsAny(t, " \t") {
			return nil, fmt.Errorf("token file %s: line %d: a token must be at least %d characters without spaces", path, n, MinTokenLength)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s holds no token (one per line)", path)
	}
	return out, nil
}

// tokenSet holds SHA-256 digests of tokens, so that a comparison takes the
// same time whatever the length or content of the token presented.
type tokenSet [][sha256.Size]byte

func newTokenSet(tokens []string) tokenSet {
	out := make(tokenSet, len(tokens))
	for i, t := range tokens {
		out[i] = sha256.Sum256([]byte(t))
	}
	return out
}

// has compares the token with every token of the set in constant time.
func (ts tokenSet) has(token string) bool {
	d := sha256.Sum256([]byte(token))
	found := 0
	for i := range ts {
		found |= subtle.ConstantTimeCompare(d[:], ts[i][:])
	}
	return found == 1
}

// bearer is the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authorize checks the bearer token a route needs: 401 when it is missing or
// wrong, 403 when a user token calls an admin route.
func (s *Server) authorize(r *http.Request, a access) *apiError {
	if a == accessMetrics {
		a = accessOpen
		if s.opt.MetricsAuth {
			a = accessUser
		}
	}
	switch a {
	case accessOpen:
		return nil
	case accessUser:
		if len(s.users) == 0 {
			return nil
		}
	case accessAdmin:
		if len(s.admins) == 0 {
			return errorf(http.StatusForbidden, "changing adapters is off: start serve with --admin-token-file")
		}
	}
	tok, ok := bearer(r)
	if !ok {
		return errorf(http.StatusUnauthorized, "missing bearer token: send the header Authorization: Bearer <token>")
	}
	admin := s.admins.has(tok)
	switch {
	case a == accessAdmin && admin:
		return nil
	case a == accessUser && (admin || s.users.has(tok)):
		return nil
	case a == accessAdmin && s.users.has(tok):
		return errorf(http.StatusForbidden, "this call changes adapters: it needs an admin token (--admin-token-file)")
	}
	return errorf(http.StatusUnauthorized, "the bearer token is not valid")
}

// CheckListen refuses to listen beyond this machine unprotected: an address
// that is not loopback needs auth tokens, or insecure set explicitly.
func CheckListen(addr string, auth, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("serve: --addr %q: %w", addr, err)
	}
	if isLoopback(host) || auth || insecure {
		return nil
	}
	where := host
	if where == "" {
		where = "every interface"
	}
	return fmt.Errorf("serve: --addr %s listens on %s, beyond this machine, and no --auth-token-file is given: anyone who reaches it could use the models; "+
		"give --auth-token-file (and --tls-cert/--tls-key), or --insecure if a proxy in front does the access control", addr, where)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
