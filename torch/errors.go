package torch

import (
	"errors"
	"strings"

	"github.com/sugarme/gotch/ts"
)

// Error is a LibTorch operation that failed: an index out of range, shapes that
// do not fit, CUDA out of memory. gotch's wrappers would end the process; the
// build's gotch copy panics with the error instead, and Catch returns it as an
// *Error. Msg is LibTorch's own message without its C++ backtrace.
type Error struct {
	Msg string
}

func (e *Error) Error() string { return "libtorch: " + e.Msg }

// IsOutOfMemory reports whether the failure was an allocation that did not
// fit: CUDA's "out of memory", the CPU allocator's "can't allocate memory".
func (e *Error) IsOutOfMemory() bool {
	m := strings.ToLower(e.Msg)
	return strings.Contains(m, "out of memory") || strings.Contains(m, "can't allocate memory") || strings.Contains(m, "defaultcpuallocator")
}

// Catch runs fn and returns a LibTorch failure inside it as an *Error. Any
// other panic is passed on unchanged.
func Catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e := AsError(r); e != nil {
				err = e
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}

// AsError returns the *Error a recovered panic value stands for, or nil when
// the panic was not a LibTorch failure.
func AsError(r any) *Error {
	var le *ts.LoraqaError
	if err, ok := r.(error); ok && errors.As(err, &le) {
		return &Error{Msg: cleanMessage(le.Err.Error())}
	}
	return nil
}

// cleanMessage keeps LibTorch's message and drops what only a C++ developer
// reads: the "Exception raised from ..." line and the frames after it.
func cleanMessage(s string) string {
	s = strings.ReplaceAll(s, "Libtorch API Error: ", "")
	for _, cut := range []string{"\nException raised from", "Exception raised from", "\nframe #0"} {
		if i := strings.Index(s, cut); i >= 0 {
			s = s[:i]
		}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "unknown LibTorch error"
	}
	return s
}
