package hub

import (
	"fmt"
	"regexp"
	"strings"
)

// Ref is a hub model reference.
type Ref struct {
	Repo     string // "name" or "org/name"
	Revision string // branch, tag or commit; "main" by default
}

func (r Ref) String() string { return r.Repo + "@" + r.Revision }

var (
	repoRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
	commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// ParseRef parses "repo[@revision]".
func ParseRef(s string) (Ref, error) {
	repo, rev, hasRev := strings.Cut(s, "@")
	if !hasRev {
		rev = "main"
	}
	if len(repo) > 96 || !repoRE.MatchString(repo) || strings.Contains(repo, "--") || strings.Contains(repo, "..") {
		return Ref{}, fmt.Errorf("hub: %q is not a local directory nor a hub id like name or org/name[@revision]", s)
	}
	if err := checkRelPath(rev); err != nil {
		return Ref{}, fmt.Errorf("hub: revision in %q: %w", s, err)
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

// folder is the cache directory name of the repository.
func (r Ref) folder() string {
	return "models--" + strings.ReplaceAll(r.Repo, "/", "--")
}

// checkRelPath accepts a slash-separated relative path that stays inside
// its directory: used for revisions and file names from the hub.
func checkRelPath(p string) error {
	if p == "" || len(p) > 255 {
		return fmt.Errorf("%q must be 1 to 255 characters", p)
	}
	if strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("%q is not a relative slash-separated path", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%q has an empty, . or .. component", p)
		}
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%q contains control characters", p)
		}
	}
	return nil
}
