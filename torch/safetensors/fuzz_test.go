package safetensors

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// can be read in full and survives an Encode/Parse round trip.
func FuzzParse(f *testing.F) {
	f.Add(build(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := Parse(data)
		if err != nil {
			return
		}
		var tensors []Tensor
		for _, info := range sf.Tensors {
			tt, err := sf.Tensor(info.Name)
			if err != nil {
				t.Fatalf("accepted file but cannot read %q: %v", info.Name, err)
			}
			if int64(len(tt.Data)) != info.NumElements()*info.DType.Size() {
				t.Fatalf("%q: %d bytes for shape %v", info.Name, len(tt.Data), info.Shape)
			}
			if info.DType.IsFloat() {
				if _, _, err := sf.Float32s(info.Name); err != nil {
					t.Fatalf("%q: %v", info.Name, err)
				}
			}
			tensors = append(tensors, tt)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, tensors, sf.Metadata); err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parsing a re-encoded file: %v", err)
		}
		if len(again.Tensors) != len(tensors) || len(again.Metadata) != len(sf.Metadata) {
			t.Fatalf("round trip changed the file: %d tensors -> %d", len(tensors), len(again.Tensors))
		}
		for i, tt := range tensors {
			got, err := again.Tensor(tt.Name)
			if err != nil || got.DType != tt.DType || !bytes.Equal(got.Data, tt.Data) || len(got.Shape) != len(tt.Shape) {
				t.Fatalf("tensor %d %q changed in the round trip", i, tt.Name)
			}
		}
		for k, v := range sf.Metadata {
			if again.Metadata[k] != v {
				t.Fatalf("metadata %q changed in the round trip", k)
			}
		}
	})
}
