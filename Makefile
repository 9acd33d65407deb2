# loraqa — make setup | build | test | test-data | test-race | test-deploy | demo | example | reference | bench | fuzz | gpu-bundle | gpu-check-cpu
SHELL := /bin/bash
GO ?= go
BIN := bin/loraqa
REF_VENV := .venv-ref
TESTDATA := .build/testdata
# Where the tests find the generated test material (internal/testutil).
export LORAQA_TESTDATA ?= $(CURDIR)/$(TESTDATA)
export LORAQA_REF_PYTHON ?= $(CURDIR)/$(REF_VENV)/bin/python
# LibTorch's OpenMP threads must not spin (see cmd/loraqa/main.go): tests too.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: all setup build test test-data test-go test-ref test-race test-deploy reference demo example bench fuzz clean doctor gpu-bundle gpu-check-cpu lint

all: build

## setup: find LibTorch (LIBTORCH, else PyPI's torch wheel, or Debian's libtorch-dev with LIBTORCH_SOURCE=debian),
## and generate the project-local gotch copy + go.work. Re-runs only when LibTorch changes.
setup:
	GOWORK=off $(GO) run ./tools/setup

build: setup
	$(GO) build -o $(BIN) ./cmd/loraqa

doctor: build
	$(BIN) doctor

## reference: the Python reference (PyTorch, transformers, PEFT from PyPI, pinned in scripts/ref/requirements.txt) in $(REF_VENV),
## the SQuAD 2.0 reference (scripts/setup-squad2-ref.sh: HF's postprocess_qa_predictions and squad_metrics, no PyTorch) in
## .build/venv-squad2, then the test material it generates (scripts/make-testdata.sh: the tiny DistilBERT fixture, a tokenizer) in $(TESTDATA)
reference:
	scripts/setup-reference.sh $(REF_VENV)
	scripts/setup-squad2-ref.sh
	GO=$(GO) scripts/make-testdata.sh "$(LORAQA_REF_PYTHON)" $(TESTDATA)

## test: Go tests (fuzz corpora replayed) + the tests that compare with the Python reference, on the
## committed samples and the generated test material; missing material fails them (LORAQA_REQUIRE_REF=1).
test: build reference
	LORAQA_REQUIRE_REF=$${LORAQA_REQUIRE_REF:-1} LORAQA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 40m ./...

## test-data: the tests on the real datasets (README "Tests on the real datasets"), built with the
## realdata tag: LORAQA_DATA=DIR holds tatqa-dev-qa.txt, tatqa-dev-textspan.squad.json, squad-v1.1-dev-part1.json.
test-data: build reference
	@[ -n "$${LORAQA_DATA:-}" ] || { echo "make test-data: set LORAQA_DATA=DIR (the real datasets; see README)" >&2; exit 2; }
	@[ -d "$$LORAQA_DATA" ] || { echo "make test-data: LORAQA_DATA=$$LORAQA_DATA is not a directory" >&2; exit 2; }
	LORAQA_DATA="$$(realpath "$$LORAQA_DATA")" LORAQA_REQUIRE_REF=$${LORAQA_REQUIRE_REF:-1} \
	  $(GO) test -tags realdata -count=1 -timeout 20m -run '^TestRealData' -bench '^BenchmarkRealData' -benchtime 1x ./...

## lint: go vet, staticcheck (STATICCHECK, else staticcheck on PATH or in $(go env GOPATH)/bin; install with
## `go install honnef.co/go/tools/cmd/staticcheck@latest`) and the API checks of internal/apicheck, on the module
## and on examples/.
STATICCHECK ?= $(shell command -v staticcheck || echo $$($(GO) env GOPATH)/bin/staticcheck)
lint: setup
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) test -count=1 ./internal/apicheck/
	cd examples && GOWORK=off $(GO) vet ./... && GOWORK=off $(STATICCHECK) ./...

## test-race: the engine and server packages under the race detector (CI should run it).
test-race: setup
	$(GO) test -race -count=1 ./engine/... ./serve/...

## test-deploy: the Kubernetes manifests of deploy/ (a module of its own, with the k8s.io/api types):
## decoded strictly, the InferenceService checked against KServe's CRD schema, the probes against serve's routes.
test-deploy:
	cd deploy && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...

demo: build
	scripts/demo.sh

## example: build examples/ (its own module, importing loraqa as an outside module does; GOWORK=off so that
## go.work hides nothing), answer a few questions with the demo's adapter (EXAMPLE_ADAPTER; run make demo first),
## then train an adapter in-process on the demo's base (train.Run) and answer with it.
EXAMPLE_ADAPTER ?= out/demo/adapter
example: setup
	cd examples && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) build -o ../bin/answer ./answer && GOWORK=off $(GO) build -o ../bin/train-example ./train
	bin/answer --adapter $(EXAMPLE_ADAPTER)
	bin/train-example --out out/example --base "$$(sed -n 's/.*"base_model_name_or_path": *"\([^"]*\)".*/\1/p' $(EXAMPLE_ADAPTER)/adapter_config.json)"

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 5x ./bench/

fuzz:
	scripts/fuzz.sh $${FUZZTIME:-5m}

## gpu-bundle: bin/loraqa for the GPU machine (PyPI torch 2.11.0, CUDA; its own .build/gpu and go.work,
## the default build is left alone) + the fixture, in .build/gpu-bundle (and .build/gpu-bundle.tar.xz)
gpu-bundle:
	scripts/gpu-bundle.sh

## gpu-check-cpu: the dry run of the GPU check (scripts/gpu-check.sh --device cpu, small shapes)
## with bin/loraqa; fails unless its summary says every stage passed (fp16 verify is skipped on the CPU)
GPU_CHECK_OUT ?= .build/gpu-check-cpu
gpu-check-cpu: build reference
	rm -rf $(GPU_CHECK_OUT)
	LORAQA_BIN=$(CURDIR)/$(BIN) scripts/gpu-check.sh $(GPU_CHECK_OUT) --device cpu
	@grep -q '^overall: pass' $(GPU_CHECK_OUT)/summary.txt
	@! grep -E '^[a-z0-9-]+ +(fail|timeout|killed|pending|running) ' $(GPU_CHECK_OUT)/summary.txt

clean:
	rm -rf bin .build go.work go.work.sum
