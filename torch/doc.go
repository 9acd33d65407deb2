// Package torch is loraqa's thin layer over gotch (LibTorch): device choice,
// reproducible seeding, a NoGrad that restores the previous grad mode, a
// live-tensor count for leak tests, and the conversion of safetensors tensors to and from gotch tensors.
//
// It needs the project-local gotch copy that `make setup` generates (see
// tools/setup): that copy adds the small cgo shims gotch lacks
// (at::manual_seed, thread counts) and the build facts that Build reports.
package torch
