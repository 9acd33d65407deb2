// Package safetensors reads and writes the safetensors tensor file format
// in pure Go.
//
// A safetensors file is an 8-byte little-endian unsigned header length N,
// N bytes of UTF-8 JSON header, and a data buffer. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the start of the data buffer) and may hold a "__metadata__"
// object of string values.
//
// Reading is strict, following the reference Rust implementation: the
// header length is capped, the header must be a JSON object with known
// dtypes and non-negative shapes, every tensor's byte size must match its
// shape, and the tensors must cover the data buffer exactly, without
// overlaps or gaps. Every error names the file and, where there is one, the
// tensor key. Open reads only the header; tensor data is read on demand
// with ReadAt.
//
// Writing produces the same bytes as the Python/Rust library: tensors are
// laid out by decreasing dtype (wider types first, which keeps data
// aligned) then by name, the header is compact JSON padded with spaces to a
// multiple of 8 bytes, and files are written atomically (temporary file,
// fsync, rename).
package safetensors
