package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/loraqa/loraqa/bert"
	"github.com/loraqa/loraqa/internal/testutil"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
)

// TestTrainChild runs `loraqa train` with the arguments in LOADTEST_CHILD_TRAIN_ARGS
// (a JSON list) when it is set; the tests below start it as a child process.
func TestTrainChild(t *testing.T) {
	raw := os.Getenv("LOADTEST_CHILD_TRAIN_ARGS")
	if raw == "" {
		return // not started as the child of TestSIGKILLThenResume: nothing to do
	}
	var args []string
	require.NoError(t, json.Unmarshal([]byte(raw), &args))
	if err := runTrain(context.Background(), args); err != nil {
		t.Fatal(err)
	}
}

func trainArgs(t *testing.T, out string, epochs int) []string {
	base := filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
	qa := testutil.SampleQA(t)
	return []string{"--set", "base_qa_model=" + base, "--set", "fine_tuned_adapter_path=" + filepath.Join(out, "adapter"),
		"--set", "data.input=" + qa, "--set", "data.max_seq_length=128", "--set", "data.doc_stride=32",
		"--set", "data.negative_fraction=0.01", "--set", "data.test_fraction=0.02", "--set", "train.epochs=" + itoa(epochs), "--set", "train.batch_size=4",
		"--set", "train.save_total_limit=0", "--set", "output_dir=" + filepath.Join(out, "run"), "--set", "device=cpu"}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestSIGKILLThenResume kills `loraqa train` with SIGKILL at several moments;
// after each kill every checkpoint on disk loads, and --resume finishes the run,
// whose adapter then loads.
func TestSIGKILLThenResume(t *testing.T) {
	out := t.TempDir()
	args := trainArgs(t, out, 4)
	base := args[1][len("base_qa_model="):]
	start := func(extra ...string) *exec.Cmd {
		b, _ := json.Marshal(append(append([]string(nil), args...), extra...))
		cmd := exec.Command(os.Args[0], "-test.run=^TestTrainChild$", "-test.count=1", "-test.timeout=10m")
		cmd.Env = append(os.Environ(), "LOADTEST_CHILD_TRAIN_ARGS="+string(b))
		require.NoError(t, cmd.Start())
		return cmd
	}
	checkpointsLoad := func() int {
		cks, err := train.Checkpoints(filepath.Join(out, "run"))
		require.NoError(t, err)
		requireCheckpointsLoad(t, base, cks, "must load after SIGKILL")
		return len(cks)
	}
	// Kill while starting, then twice more after a checkpoint has appeared
	// (during the next epoch, possibly in the middle of a checkpoint write).
	waits := []func(){
		func() { time.Sleep(1500 * time.Millisecond) },
		func() { waitForCheckpoints(t, out, 1); time.Sleep(300 * time.Millisecond) },
		func() { waitForCheckpoints(t, out, 2); time.Sleep(10 * time.Millisecond) },
	}
	for i, wait := range waits {
		extra := []string{}
		if i > 0 {
			extra = []string{"--resume", "latest"}
		}
		cmd := start(extra...)
		wait()
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		n := checkpointsLoad()
		t.Logf("kill %d: %d checkpoints on disk, all load", i+1, n)
		entries, _ := os.ReadDir(filepath.Join(out, "run"))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "checkpoint-") {
				assert.FileExists(t, filepath.Join(out, "run", e.Name(), "trainer_state.json"), "a visible checkpoint is complete")
			}
		}
	}
	cmd := start("--resume", "latest")
	require.NoError(t, cmd.Wait(), "resumed run finishes")
	loadTrained(t, base, out)
	var st train.State
	cks, _ := train.Checkpoints(filepath.Join(out, "run"))
	b, err := os.ReadFile(filepath.Join(cks[len(cks)-1], "trainer_state.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &st))
	assert.Equal(t, 4, st.Epoch, "the resumed run reached the last epoch")
}

func waitForCheckpoints(t *testing.T, out string, n int) {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		cks, _ := train.Checkpoints(filepath.Join(out, "run"))
		if len(cks) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %d checkpoints after 3 minutes", n)
}

// TestNaNStopsTraining: a learning rate that makes the loss blow up stops the
// run with a clear message, and no checkpoint holds non-finite values.
func TestNaNStopsTraining(t *testing.T) {
	out := t.TempDir()
	args := append(trainArgs(t, out, 3), "--set", "train.learning_rate=1e12", "--set", "train.max_grad_norm=0")
	err := runTrain(context.Background(), args)
	require.Error(t, err)
	assert.Regexp(t, `(loss|gradient norm) is (NaN|\+Inf|-Inf)|NaN or Inf`, err.Error())
	base := args[1][len("base_qa_model="):]
	cks, _ := train.Checkpoints(filepath.Join(out, "run"))
	requireCheckpointsLoad(t, base, cks, "holds finite values (peft.Load rejects NaN/Inf tensors)")
}

// requireCheckpointsLoad loads each of the checkpoints cks as an adapter over
// the base model in base, and fails t on the first that peft.Load refuses
// (torn by a kill, or holding NaN/Inf), saying why it must load.
func requireCheckpointsLoad(t *testing.T, base string, cks []string, why string) {
	t.Helper()
	m, err := bert.Load(base, bert.LoadOptions{Device: gotch.CPU})
	require.NoError(t, err)
	defer m.Drop()
	for _, c := range cks {
		a, err := peft.Load(c, m)
		require.NoError(t, err, "checkpoint %s %s", c, why)
		a.Drop()
	}
}

// TestReadOnlyOutputFailsBeforeTraining: an output directory that cannot be
// written is reported before any training starts.
func TestReadOnlyOutputFailsBeforeTraining(t *testing.T) {
	if os.Getuid() == 0 {
		// root ignores permission bits: use a path under a regular file instead.
		out := t.TempDir()
		f := filepath.Join(out, "file")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		args := trainArgs(t, out, 1)
		args = append(args, "--set", "output_dir="+filepath.Join(f, "run"))
		err := runTrain(context.Background(), args)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "output directory")
		return
	}
	out := t.TempDir()
	ro := filepath.Join(out, "ro")
	require.NoError(t, os.Mkdir(ro, 0o555))
	args := append(trainArgs(t, out, 1), "--set", "output_dir="+filepath.Join(ro, "run"))
	err := runTrain(context.Background(), args)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "output directory")
}

// TestTrainRefusesWindowsPastThePositions: data.max_seq_length above the
// model's max_position_embeddings is refused before the data is featurized
// or any forward runs (LibTorch would fail inside the position embedding).
func TestTrainRefusesWindowsPastThePositions(t *testing.T) {
	out := t.TempDir()
	args := append(trainArgs(t, out, 1), "--set", "data.max_seq_length=256")
	err := runTrain(context.Background(), args)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_seq_length 256 is longer than the model's max_position_embeddings 128")
	cks, err := train.Checkpoints(filepath.Join(out, "run"))
	require.NoError(t, err)
	assert.Empty(t, cks, "no training step ran")
}

// TestTrainBF16: `loraqa train` with train.dtype=bf16 trains and saves a
// float32 adapter that loads over a float32 base.
func TestTrainBF16(t *testing.T) {
	out := t.TempDir()
	args := append(trainArgs(t, out, 1), "--force", "--set", "train.dtype=bf16") // --force: CI may run on a CPU that emulates bf16
	require.NoError(t, runTrain(context.Background(), args))
	_, a := loadTrained(t, args[1][len("base_qa_model="):], out)
	moved := false
	for _, p := range a.Params() {
		assert.Equal(t, gotch.Float, p.Tensor.DType(), p.Key)
		if strings.Contains(p.Key, "lora_B") {
			for _, v := range torch.ToFloat32(p.Tensor) {
				moved = moved || v != 0
			}
		}
	}
	assert.True(t, moved, "training in bf16 moved lora_B away from its zero init")
}
