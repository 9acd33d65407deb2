package sweep

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake `loraqa train` when SWEEP_FAKE_TRAIN=1,
// so the runner's process handling is tested without LibTorch.
func TestMain(m *testing.M) {
	if os.Getenv("SWEEP_FAKE_TRAIN") == "1" {
		os.Exit(fakeTrain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeCall is one invocation of the fake, as recorded in $SWEEP_FAKE_CALLS.
type fakeCall struct {
	Args []string `json:"args"`
	CUDA string   `json:"cuda"`
}

// fakeTrain writes what `loraqa train` writes: output_dir/metrics.jsonl with
// two evaluations, a checkpoint, and fine_tuned_adapter_path/metrics.json.
// Its F1 is 10*lora.r + 1000*train.learning_rate (second evaluation; the
// first is 1 lower). lora.r=99 fails; $SWEEP_FAKE_BLOCK names a
// fine_tuned_adapter_path substring whose trial waits for SIGINT, then
// checkpoints and fails as train does; $SWEEP_FAKE_DEVLOCKS is a directory
// where each device is held while the trial runs (a second holder fails).
func fakeTrain(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "loraqa train: error: "+format+"\n", a...)
		return 1
	}
	if len(args) == 0 || args[0] != "train" {
		return fail("fake: want train, got %q", args)
	}
	if p := os.Getenv("SWEEP_FAKE_CALLS"); p != "" {
		b, _ := json.Marshal(fakeCall{Args: args, CUDA: os.Getenv("CUDA_VISIBLE_DEVICES")})
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fail("fake: %v", err)
		}
		f.Write(append(b, '\n'))
		f.Close()
	}
	sets := map[string]string{}
	resume := false
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "--set":
			if i+1 < len(args) {
				k, v, _ := strings.Cut(args[i+1], "=")
				sets[k] = v
				i++
			}
		case "--resume":
			resume = true
			i++
		}
	}
	run, adapter := sets["output_dir"], sets["fine_tuned_adapter_path"]
	if run == "" || adapter == "" {
		return fail("fake: output paths not set")
	}
	if d := os.Getenv("SWEEP_FAKE_DEVLOCKS"); d != "" && os.Getenv("CUDA_VISIBLE_DEVICES") != "" {
		lock := filepath.Join(d, "gpu-"+os.Getenv("CUDA_VISIBLE_DEVICES"))
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fail("fake: GPU %s is busy with another trial", os.Getenv("CUDA_VISIBLE_DEVICES"))
		}
		f.Close()
		defer os.Remove(lock)
		time.Sleep(100 * time.Millisecond)
	}
	if resume {
		if m, _ := filepath.Glob(filepath.Join(run, "checkpoint-*")); len(m) == 0 {
			return fail("no checkpoint to resume from in %s", run)
		}
	}
	if err := os.MkdirAll(run, 0o755); err != nil {
		return fail("%v", err)
	}
	if b := os.Getenv("SWEEP_FAKE_BLOCK"); b != "" && strings.Contains(adapter, b) && !resume {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		os.WriteFile(filepath.Join(run, "started"), nil, 0o644)
		<-ch
		os.MkdirAll(filepath.Join(run, "checkpoint-1"), 0o755)
		return fail("training interrupted; a checkpoint was saved (resume with --resume)")
	}
	r, _ := strconv.Atoi(sets["lora.r"])
	if r == 99 {
		return fail("lora.r=99 is not supported by this fake")
	}
	lr, _ := strconv.ParseFloat(sets["train.learning_rate"], 64)
	f1 := 10*float64(r) + 1000*lr
	lines := fmt.Sprintf(`{"type":"train","step":1,"loss":3}
{"type":"eval","epoch":1,"step":1,"eval_loss":%v,"exact_match":%v,"f1":%v,"n":10}
{"type":"eval","epoch":2,"step":2,"eval_loss":%v,"exact_match":%v,"f1":%v,"n":10}
`, 2.0, f1/3, f1-1, 1.5, f1/2, f1)
	if err := os.WriteFile(filepath.Join(run, "metrics.jsonl"), []byte(lines), 0o644); err != nil {
		return fail("%v", err)
	}
	os.MkdirAll(filepath.Join(run, "checkpoint-2"), 0o755)
	if err := os.MkdirAll(adapter, 0o755); err != nil {
		return fail("%v", err)
	}
	final := fmt.Sprintf(`{"global_step":2,"best_f1":%v,"final_eval":{"step":2,"epoch":2,"eval_loss":1.5,"exact_match":%v,"f1":%v,"n":10}}`, f1, f1/2, f1)
	if err := os.WriteFile(filepath.Join(adapter, "metrics.json"), []byte(final), 0o644); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "adapter saved to %s\n", adapter)
	return 0
}
