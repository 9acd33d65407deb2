package engine

import "github.com/loraqa/loraqa/torch"

// LiveTensors is the number of LibTorch tensors alive in the process (the
// server's loraqa_live_tensors gauge), so that callers need not import the
// torch layer.
func LiveTensors() int { return torch.LiveTensors() }
