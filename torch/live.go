package torch

import (
	"sync/atomic"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// LiveTensors is the number of gotch tensors created and not yet freed in this
// process, and of int8 weights (QLinear) not yet dropped; tests assert that it
// returns to its start after a loop of work.
func LiveTensors() int { return ts.LoraqaLiveTensors() + liveQLinears() }

// Calls is the number of calls into LibTorch so far in this process: every
// gotch operation and every shim call (each a cgo call, and on a GPU at least
// one kernel launch). Bench reports it per training step.
func Calls() int64 { return lib.LoraqaCalls() }

var hostSyncs atomic.Int64

// HostSyncs is the number of times so far that loraqa made the host wait for
// the device: a value read back (ToFloat32), a copy to a CUDA
// device from pageable memory, a shim call that read a flag on a GPU. Reads
// on the CPU count too: there they are free, but each is a sync on a GPU.
func HostSyncs() int64 { return hostSyncs.Load() }

func countSync() { hostSyncs.Add(1) }
