package sweep

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loraqa/loraqa/config"
	"github.com/loraqa/loraqa/internal/testutil"
)

// loraqaBin is the loraqa binary (testutil.LoraqaBin: $LORAQA_BIN, which
// make test sets to bin/loraqa, or one built from this checkout); it must have
// a working sweep command.
func loraqaBin(t *testing.T) string {
	t.Helper()
	bin := testutil.LoraqaBin(t)
	if out, err := exec.Command(bin, "sweep", "-h").CombinedOutput(); err != nil {
		t.Fatalf("%s has no working sweep command (rebuild it): %v\n%s", bin, err, out)
	}
	return bin
}

// attempts counts the train runs recorded in each trial's train.log.
func attempts(t *testing.T, out string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for i := 0; i < 4; i++ {
		name := "trial-00" + strconv.Itoa(i)
		b, _ := os.ReadFile(filepath.Join(out, name, "train.log"))
		m[name] = strings.Count(string(b), "=== loraqa sweep")
	}
	return m
}

func finished(out string) map[string]bool {
	m := map[string]bool{}
	for i := 0; i < 4; i++ {
		name := "trial-00" + strconv.Itoa(i)
		_, err := os.Stat(filepath.Join(out, name, "adapter", "metrics.json"))
		m[name] = err == nil
	}
	return m
}

// TestEndToEnd runs a 2×2 sweep with the tiny fixture through bin/loraqa:
// interrupted once a trial has finished, then run again (only the missing
// trials run), then run once more after one trial's results were deleted
// (only that trial runs).
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := loraqaBin(t)
	tinyBase := filepath.Join(testutil.Fixture(t, "tiny-distilbert-qa"), "base")
	begin := time.Now()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tiny.yaml")
	y := "base_qa_model: " + tinyBase + `
device: cpu
data:
  input: ` + testutil.SampleQA(t) + `
  max_seq_length: 128
  doc_stride: 32
  negative_fraction: 0.01
  test_fraction: 0.03
train:
  epochs: 1
  max_steps: 8
  batch_size: 16
  threads: 1
`
	writeFile(t, cfg, y)
	out := filepath.Join(dir, "sweep")
	args := []string{"sweep", "--config", cfg, "--grid", "train.learning_rate=1e-3,5e-4", "--grid", "lora.r=4,8",
		"--out", out, "--parallel", "2", "--progress-every", "0"}
	sweepRun := func() (string, error) {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		return stderr.String(), err
	}

	// 1. Start the sweep and interrupt it once its first trial has finished.
	// The test reads stderr only once the sweep has exited (and cmd.Wait has
	// copied all of it).
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(90 * time.Second)
	var err1 error
wait:
	for {
		select {
		case err1 = <-exited:
			t.Logf("the sweep finished before it could be interrupted")
			break wait
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("no trial finished in 90s:\n%s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		done := 0
		for _, f := range finished(out) {
			if f {
				done++
			}
		}
		if done > 0 {
			cmd.Process.Signal(os.Interrupt)
			err1 = <-exited
			break
		}
	}
	before, doneBefore := attempts(t, out), finished(out)
	var ee *exec.ExitError
	if n := count(doneBefore); n < 4 && (!errors.As(err1, &ee) || !strings.Contains(stderr.String(), "sweep interrupted")) {
		t.Fatalf("interrupted sweep: %v\n%s", err1, stderr.String())
	}
	t.Logf("interrupted after %s with %d of 4 trials finished", time.Since(begin).Round(time.Millisecond), count(doneBefore))

	// 2. Run again: the finished trials are skipped, the others run.
	log2, err := sweepRun()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, log2)
	}
	after := attempts(t, out)
	for name, was := range doneBefore {
		switch {
		case was && after[name] != before[name]:
			t.Errorf("%s had finished but ran again", name)
		case !was && after[name] != before[name]+1:
			t.Errorf("%s was unfinished: %d attempts before, %d after, want one more", name, before[name], after[name])
		}
	}
	if want := strconv.Itoa(count(doneBefore)) + " finished earlier (skipped)"; !strings.Contains(log2, want) {
		t.Errorf("second run's progress lacks %q:\n%s", want, log2)
	}
	rows := readCSV(t, filepath.Join(out, "results.csv"))
	if len(rows) != 5 {
		t.Fatalf("results.csv has %d rows, want a header and 4 trials: %q", len(rows), rows)
	}
	prev := 1e18
	for i, r := range rows[1:] {
		f1, err := strconv.ParseFloat(r[5], 64)
		if err != nil || r[0] != strconv.Itoa(i+1) || r[7] != "done" || f1 > prev {
			t.Errorf("results.csv row %d %q: want rank %d, done, F1 not above the previous %v", i+1, r, i+1, prev)
		}
		prev = f1
	}
	best, err := config.Load(config.LoadOptions{File: filepath.Join(out, "best_config.yaml")})
	if err != nil {
		t.Fatalf("best_config.yaml: %v", err)
	}
	if strconv.Itoa(best.LoRA.R) != rows[1][3] {
		t.Errorf("best_config.yaml has lora.r=%d, the best trial %s", best.LoRA.R, rows[1][3])
	}
	for _, f := range []string{"results.md", "f1_per_trial.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}

	// 3. Delete one finished trial's results: only that trial runs again.
	victim := rows[2][1]
	for _, d := range []string{"adapter", "run"} {
		if err := os.RemoveAll(filepath.Join(out, victim, d)); err != nil {
			t.Fatal(err)
		}
	}
	before = attempts(t, out)
	log3, err := sweepRun()
	if err != nil {
		t.Fatalf("third run: %v\n%s", err, log3)
	}
	after = attempts(t, out)
	for name, n := range after {
		want := before[name]
		if name == victim {
			want++
		}
		if n != want {
			t.Errorf("%s: %d attempts after the third run, want %d", name, n, want)
		}
	}
	if !strings.Contains(log3, "3 finished earlier (skipped), 1 to run") || !strings.Contains(log3, victim+" started") {
		t.Errorf("third run's progress:\n%s", log3)
	}
	if rows := readCSV(t, filepath.Join(out, "results.csv")); len(rows) != 5 || count(finished(out)) != 4 {
		t.Errorf("after the third run: %q", rows)
	}
	t.Logf("end-to-end sweep took %s", time.Since(begin).Round(time.Millisecond))
}

func count(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}
