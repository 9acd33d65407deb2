package errkind

import (
	"errors"
	"io/fs"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

var errA, errB = errors.New("kind a"), errors.New("kind b")

// The message is the error's own; errors.Is finds the kind and what the
// message wraps, and no other kind.
func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		msg  string
		is   []error
	}{
		{"Errorf", Errorf(errA, "key %q: %d", "x", 3), `key "x": 3`, []error{errA}},
		{"Errorf wrapping", Errorf(errB, "open: %w", fs.ErrNotExist), "open: file does not exist", []error{errB, fs.ErrNotExist}},
		{"With", With(errA, fs.ErrPermission), "permission denied", []error{errA, fs.ErrPermission}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.EqualError(t, tc.err, tc.msg)
			for _, k := range []error{errA, errB, fs.ErrNotExist, fs.ErrPermission} {
				assert.Equal(t, slices.Contains(tc.is, k), errors.Is(tc.err, k), "errors.Is(%v)", k)
			}
		})
	}
}
