package torch

import "github.com/sugarme/gotch/ts"

// LiveTensors is the number of gotch tensors created and not yet freed in this
// process; tests assert that it returns to its start after a loop of work.
func LiveTensors() int { return ts.LoraqaLiveTensors() }
