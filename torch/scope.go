package torch

import (
	"sync"

	"github.com/sugarme/gotch/ts"
)

// Scope collects tensors made during one unit of work (a training step, a
// request) and drops them all at Close, so LibTorch memory never waits for the
// Go GC. A tensor that must outlive the scope is taken out with Keep.
//
//	s := torch.NewScope()
//	defer s.Close()
//	h := s.T(x.MustMatmul(w, false))
type Scope struct {
	mu      sync.Mutex
	tensors []*ts.Tensor
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// T registers t with the scope and returns it.
func (s *Scope) T(t *ts.Tensor) *ts.Tensor {
	s.mu.Lock()
	s.tensors = append(s.tensors, t)
	s.mu.Unlock()
	return t
}

// Keep removes t from the scope, so Close does not drop it; the caller owns it.
func (s *Scope) Keep(t *ts.Tensor) *ts.Tensor {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.tensors) - 1; i >= 0; i-- {
		if s.tensors[i] == t {
			s.tensors = append(s.tensors[:i], s.tensors[i+1:]...)
			break
		}
	}
	return t
}

// Len is the number of tensors the scope holds.
func (s *Scope) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tensors)
}

// Close drops every tensor still in the scope. It is safe to call twice.
func (s *Scope) Close() {
	s.mu.Lock()
	ts := s.tensors
	s.tensors = nil
	s.mu.Unlock()
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i] != nil && ts[i].MustDefined() {
			ts[i].MustDrop()
		}
	}
}

// LiveTensors is the number of gotch tensors created and not yet freed in this
// process; tests assert that it returns to its start after a loop of work.
func LiveTensors() int { return ts.LoraqaLiveTensors() }
