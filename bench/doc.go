// Package bench holds the `go test -bench` benchmarks of loraqa's hot pieces: a
// LoRA linear, an encoder layer's attention, one training step on the tiny
// shape, and featurization of SQuAD-format text (the committed sample; SQuAD dev
// behind the realdata build tag, make test-data). `loraqa bench` measures whole runs.
package bench
