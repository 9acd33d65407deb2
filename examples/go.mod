module github.com/loraqa/loraqa/examples

go 1.24.0

require github.com/loraqa/loraqa v0.0.0

require (
	github.com/emirpasic/gods v1.18.1 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/schollz/progressbar/v2 v2.15.0 // indirect
	github.com/sugarme/gotch v0.9.1 // indirect
	github.com/sugarme/regexpset v0.0.0-20200920021344-4d4ec8eaf93c // indirect
	github.com/sugarme/tokenizer v0.3.0 // indirect
	go.yaml.in/yaml/v3 v3.0.4 // indirect
	golang.org/x/text v0.28.0 // indirect
)

replace github.com/loraqa/loraqa => ../

// The gotch copy that `make setup` generates for the LibTorch found (the
// loraqa shim functions live there).
replace github.com/sugarme/gotch v0.9.1 => ../.build/gotch
