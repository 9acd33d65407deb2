package safetensors

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalid is matched (errors.Is) by every error about a malformed file
// or malformed tensors given to the writer.
var ErrInvalid = errors.New("invalid safetensors data")

// Error describes a malformed file. Key is the tensor (or "__metadata__")
// concerned, empty for errors about the file as a whole.
type Error struct {
	Path string
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	s := "safetensors " + e.Path + ": "
	if e.Key != "" {
		s += "tensor " + strconv.Quote(e.Key) + ": "
	}
	return s + e.Msg
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func newErr(path, key, format string, args ...any) *Error {
	return &Error{Path: path, Key: key, Msg: fmt.Sprintf(format, args...)}
}
