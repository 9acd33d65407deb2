package sweep

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loraqa/loraqa/config"
)

// writeConfig writes a base config that loads (its paths are never opened:
// the trials are run by the fake).
func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	return writeFile(t, filepath.Join(dir, "base.yaml"),
		"base_qa_model: /fixtures/tiny\ndata:\n  input: /data/qa.txt\n  max_seq_length: 128\n  doc_stride: 32\ntrain:\n  epochs: 1\n")
}

// writeFile writes content to path, making its directory first, and
// returns path.
func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// useFake makes the test binary the trials' loraqa and returns it and the
// file where it records its calls.
func useFake(t *testing.T) (exe, calls string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	calls = filepath.Join(t.TempDir(), "calls.jsonl")
	t.Setenv("SWEEP_FAKE_TRAIN", "1")
	t.Setenv("SWEEP_FAKE_CALLS", calls)
	return exe, calls
}

func readCalls(t *testing.T, path string) []fakeCall {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fakeCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c fakeCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// trialOf names the trial a call ran, from its fine_tuned_adapter_path.
func trialOf(c fakeCall) string {
	for _, a := range c.Args {
		if p, ok := strings.CutPrefix(a, "fine_tuned_adapter_path="); ok {
			return filepath.Base(filepath.Dir(p))
		}
	}
	return ""
}

func trialsCalled(t *testing.T, path string) []string {
	var names []string
	for _, c := range readCalls(t, path) {
		names = append(names, trialOf(c))
	}
	slices.Sort(names)
	return names
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func mustPlan(t *testing.T, o Options) *Sweep {
	t.Helper()
	s, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func grid2x2() []string { return []string{"train.learning_rate=1e-3,5e-4", "lora.r=4,8"} }

func TestPlanTrialsAndArgs(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	s := mustPlan(t, Options{ConfigFile: cfg, Sets: []string{"train.epochs=2"}, Grid: grid2x2(), Out: filepath.Join(dir, "sw")})
	var names []string
	for _, tr := range s.Trials {
		names = append(names, tr.Name)
	}
	if !slices.Equal(names, []string{"trial-000", "trial-001", "trial-002", "trial-003"}) {
		t.Fatalf("trials %v", names)
	}
	got := s.TrainArgs(s.Trials[1])
	out := filepath.Join(dir, "sw", "trial-001")
	want := []string{"train", "--config", cfg, "--set", "train.epochs=2", "--set", "train.learning_rate=1e-3", "--set", "lora.r=8",
		"--set", "output_dir=" + filepath.Join(out, "run"), "--set", "fine_tuned_adapter_path=" + filepath.Join(out, "adapter")}
	if !slices.Equal(got, want) {
		t.Errorf("TrainArgs =\n%q\nwant\n%q", got, want)
	}
	if s.Workers != 1 {
		t.Errorf("default workers %d, want 1", s.Workers)
	}
	// Random trials are named after their grid combination.
	r := mustPlan(t, Options{ConfigFile: cfg, Grid: []string{"lora.r=1,2,3,4,5,6,7,8,9,10,11,12"}, Random: 3, RandomSeed: 5, Out: filepath.Join(dir, "r")})
	if len(r.Trials) != 3 {
		t.Fatalf("--random 3: %d trials", len(r.Trials))
	}
	for _, tr := range r.Trials {
		if want := fmt.Sprintf("trial-%03d", tr.Combo); tr.Name != want {
			t.Errorf("trial %s for combination %d, want %s", tr.Name, tr.Combo, want)
		}
		if tr.Values[0] != r.Grid[0].Values[tr.Combo] {
			t.Errorf("%s: value %s, combination %d", tr.Name, tr.Values[0], tr.Combo)
		}
	}
}

func TestPlanValidation(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	out := filepath.Join(dir, "sw")
	for _, tc := range []struct {
		name string
		o    Options
		flag string // "" for a plain error
		want string
	}{
		{"no out", Options{ConfigFile: cfg, Grid: grid2x2()}, "--out", "missing"},
		{"bad type", Options{ConfigFile: cfg, Grid: []string{"lora.r=4,abc"}, Out: out}, "--grid lora.r", `value "abc"`},
		{"out of range", Options{ConfigFile: cfg, Grid: []string{"train.warmup_ratio=0.1,1.5"}, Out: out}, "--grid train.warmup_ratio", "not in [0, 1)"},
		{"bad combination", Options{ConfigFile: cfg, Grid: []string{"data.max_seq_length=48,256", "data.doc_stride=16,64"}, Out: out}, "",
			"trial-001 (data.max_seq_length=48 data.doc_stride=64)"},
		{"bad base", Options{ConfigFile: cfg, Sets: []string{"lora.r=0"}, Grid: []string{"train.epochs=1"}, Out: out}, "", "base config"},
		{"missing config", Options{ConfigFile: filepath.Join(dir, "nope.yaml"), Grid: grid2x2(), Out: out}, "", "nope.yaml"},
		{"bad device", Options{ConfigFile: cfg, Grid: grid2x2(), Out: out, Devices: []string{"0", "gpu1"}}, "--devices", `"gpu1"`},
		{"repeated device", Options{ConfigFile: cfg, Grid: grid2x2(), Out: out, Devices: []string{"cuda:1", "1"}}, "--devices", "twice"},
		{"too parallel", Options{ConfigFile: cfg, Grid: grid2x2(), Out: out, Devices: []string{"0", "1"}, Parallel: 3}, "--parallel", "one trial at a time"},
		{"device swept", Options{ConfigFile: cfg, Grid: []string{"device=cuda:0,cuda:1"}, Out: out, Devices: []string{"0"}}, "--grid device", "cannot be swept"},
		{"negative parallel", Options{ConfigFile: cfg, Grid: grid2x2(), Out: out, Parallel: -1}, "--parallel", "> 0"},
		{"negative random", Options{ConfigFile: cfg, Grid: grid2x2(), Out: out, Random: -2}, "--random", "> 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Plan(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			var fe *FlagError
			isFlag := errors.As(err, &fe)
			if tc.flag == "" && isFlag {
				t.Errorf("%v: a FlagError, want a plain error", err)
			}
			if tc.flag != "" && (!isFlag || fe.Flag != tc.flag) {
				t.Errorf("%v: want a FlagError for %s", err, tc.flag)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed Plan created the sweep directory")
	}
}

func TestRunResultsAndResume(t *testing.T) {
	exe, calls := useFake(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	out := filepath.Join(dir, "sw")
	var log bytes.Buffer
	opts := Options{ConfigFile: cfg, Grid: grid2x2(), Out: out, Exe: exe, Log: &log}
	sum, err := mustPlan(t, opts).Run(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if sum.Done != 4 || sum.Ran != 4 || sum.Skipped != 0 {
		t.Errorf("summary %+v", sum)
	}
	if got := trialsCalled(t, calls); len(got) != 4 {
		t.Fatalf("train ran for %v, want the 4 trials", got)
	}
	// The fake's F1 is 10*r + 1000*lr: r=8 beats r=4, then lr 1e-3 beats 5e-4.
	rows := readCSV(t, filepath.Join(out, "results.csv"))
	wantRows := [][]string{
		{"rank", "trial", "train.learning_rate", "lora.r", "exact_match", "f1", "eval_loss", "status"},
		{"1", "trial-001", "1e-3", "8", "40.5000", "81.0000", "1.5000", "done"},
		{"2", "trial-003", "5e-4", "8", "40.2500", "80.5000", "1.5000", "done"},
		{"3", "trial-000", "1e-3", "4", "20.5000", "41.0000", "1.5000", "done"},
		{"4", "trial-002", "5e-4", "4", "20.2500", "40.5000", "1.5000", "done"},
	}
	if !slices.EqualFunc(rows, wantRows, slices.Equal[[]string]) {
		t.Errorf("results.csv:\n%q\nwant\n%q", rows, wantRows)
	}
	md, _ := os.ReadFile(filepath.Join(out, "results.md"))
	if !strings.Contains(string(md), "| 1 | trial-001 | 1e-3 | 8 | 40.5000 | 81.0000 | 1.5000 | done |") || !strings.Contains(string(md), "**Best: trial-001**") {
		t.Errorf("results.md:\n%s", md)
	}
	// best_config.yaml is a loadable config with the best trial's values.
	best, err := config.Load(config.LoadOptions{File: filepath.Join(out, "best_config.yaml")})
	if err != nil {
		t.Fatalf("best_config.yaml: %v", err)
	}
	if best.LoRA.R != 8 || best.Train.LearningRate != 1e-3 || best.Data.MaxSeqLength != 128 {
		t.Errorf("best config: r=%d lr=%v max_seq=%d", best.LoRA.R, best.Train.LearningRate, best.Data.MaxSeqLength)
	}
	f, err := os.Open(filepath.Join(out, "f1_per_trial.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() < 200 {
		t.Fatalf("f1_per_trial.png: %v %v", err, img)
	}
	var tf trialFile
	b, _ := os.ReadFile(filepath.Join(out, "trial-002", "trial.json"))
	if err := json.Unmarshal(b, &tf); err != nil || tf.Trial != "trial-002" || tf.Settings["lora.r"] != "4" || tf.Settings["train.learning_rate"] != "5e-4" {
		t.Errorf("trial.json %s (%v)", b, err)
	}

	// Run again: everything finished, nothing runs.
	os.Remove(calls)
	log.Reset()
	sum, err = mustPlan(t, opts).Run(context.Background())
	if err != nil || sum.Skipped != 4 || sum.Ran != 0 {
		t.Fatalf("second run: %+v %v", sum, err)
	}
	if got := trialsCalled(t, calls); len(got) != 0 {
		t.Errorf("second run ran %v", got)
	}
	if !strings.Contains(log.String(), "4 finished earlier (skipped), 0 to run") {
		t.Errorf("progress:\n%s", log.String())
	}

	// trial-000 lost its adapter but kept a checkpoint: it resumes.
	// trial-003 was stopped before its first checkpoint: it starts over, and
	// its stale files go.
	os.RemoveAll(filepath.Join(out, "trial-000", "adapter"))
	os.RemoveAll(filepath.Join(out, "trial-003"))
	os.MkdirAll(filepath.Join(out, "trial-003", "run"), 0o755)
	os.WriteFile(filepath.Join(out, "trial-003", "run", "stale"), nil, 0o644)
	s := mustPlan(t, opts)
	res := s.Collect(nil)
	status := map[string]string{}
	for _, r := range res {
		status[r.Trial.Name] = r.Status
	}
	if status["trial-000"] != StatusIncomplete || status["trial-003"] != StatusIncomplete || status["trial-001"] != StatusDone {
		t.Errorf("statuses before the rerun: %v", status)
	}
	if _, err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readCalls(t, calls)
	if len(got) != 2 || trialOf(got[0]) != "trial-000" || trialOf(got[1]) != "trial-003" {
		t.Fatalf("rerun ran %v, want trial-000 and trial-003", got)
	}
	if !slices.Contains(got[0].Args, "--resume") || slices.Contains(got[1].Args, "--resume") {
		t.Errorf("trial-000 should resume, trial-003 start over: %q / %q", got[0].Args, got[1].Args)
	}
	if _, err := os.Stat(filepath.Join(out, "trial-003", "run", "stale")); err == nil {
		t.Error("trial-003's stale run directory was kept")
	}
	if rows := readCSV(t, filepath.Join(out, "results.csv")); len(rows) != 5 || rows[4][7] != "done" {
		t.Errorf("results.csv after the rerun: %q", rows)
	}
}

func TestRunFailure(t *testing.T) {
	exe, _ := useFake(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "sw")
	var log bytes.Buffer
	s := mustPlan(t, Options{ConfigFile: writeConfig(t, dir), Grid: []string{"lora.r=4,99,8"}, Parallel: 2, Out: out, Exe: exe, Log: &log})
	sum, err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "1 of 3 trials failed (trial-001)") || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("got %v", err)
	}
	if sum.Done != 2 || sum.Failed != 1 {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(log.String(), "trial-001 FAILED") || !strings.Contains(log.String(), "lora.r=99 is not supported") {
		t.Errorf("progress does not explain the failure:\n%s", log.String())
	}
	rows := readCSV(t, filepath.Join(out, "results.csv"))
	if len(rows) != 4 || rows[1][1] != "trial-002" || rows[3][1] != "trial-001" || rows[3][0] != "" || rows[3][len(rows[3])-1] != StatusFailed {
		t.Errorf("results.csv: %q", rows)
	}
	md, _ := os.ReadFile(filepath.Join(out, "results.md"))
	if !strings.Contains(string(md), "trial-001 failed") || !strings.Contains(string(md), "train.log") {
		t.Errorf("results.md does not explain the failure:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(out, "best_config.yaml")); err != nil {
		t.Errorf("best_config.yaml: %v", err)
	}
	lb, _ := os.ReadFile(filepath.Join(out, "trial-001", "train.log"))
	if !strings.Contains(string(lb), "=== loraqa sweep") || !strings.Contains(string(lb), "lora.r=99") {
		t.Errorf("train.log:\n%s", lb)
	}
}

func TestRunInterruptedThenResumed(t *testing.T) {
	exe, calls := useFake(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "sw")
	t.Setenv("SWEEP_FAKE_BLOCK", "trial-001")
	opts := Options{ConfigFile: writeConfig(t, dir), Grid: grid2x2(), Out: out, Exe: exe}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(out, "trial-001", "run", "started")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer cancel()
	sum, err := mustPlan(t, opts).Run(ctx)
	if err == nil || !sum.Interrupted || !strings.Contains(err.Error(), "interrupted with 1 of 4 trials finished") {
		t.Fatalf("got %+v, %v", sum, err)
	}
	rows := readCSV(t, filepath.Join(out, "results.csv"))
	st := map[string]string{}
	for _, r := range rows[1:] {
		st[r[1]] = r[len(r)-1]
	}
	if st["trial-000"] != "done" || st["trial-001"] != StatusInterrupted || st["trial-002"] != StatusPending || st["trial-003"] != StatusPending {
		t.Errorf("statuses %v", st)
	}
	// Run again: trial-000 is skipped, trial-001 resumes, the rest run.
	os.Remove(calls)
	if _, err := mustPlan(t, opts).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readCalls(t, calls)
	if names := trialsCalled(t, calls); !slices.Equal(names, []string{"trial-001", "trial-002", "trial-003"}) {
		t.Fatalf("second run ran %v", names)
	}
	if !slices.Contains(got[0].Args, "--resume") {
		t.Errorf("trial-001 did not resume: %q", got[0].Args)
	}
}

func TestRunDevices(t *testing.T) {
	exe, calls := useFake(t)
	dir := t.TempDir()
	locks := filepath.Join(dir, "locks")
	os.Mkdir(locks, 0o755)
	t.Setenv("SWEEP_FAKE_DEVLOCKS", locks)
	s := mustPlan(t, Options{ConfigFile: writeConfig(t, dir), Grid: []string{"lora.r=1,2,3,4,5,6"}, Devices: []string{"0", "cuda:3"}, Out: filepath.Join(dir, "sw"), Exe: exe})
	if s.Workers != 2 {
		t.Fatalf("workers %d, want one per device", s.Workers)
	}
	if _, err := s.Run(context.Background()); err != nil {
		t.Fatal(err) // the fake fails a trial that finds its GPU busy
	}
	used := map[string]int{}
	for _, c := range readCalls(t, calls) {
		used[c.CUDA]++
		if !slices.Contains(c.Args, "device=cuda:0") {
			t.Errorf("call %q does not set device=cuda:0", c.Args)
		}
	}
	if len(used) != 2 || used["0"] == 0 || used["3"] == 0 || used["0"]+used["3"] != 6 {
		t.Errorf("trials per CUDA_VISIBLE_DEVICES: %v", used)
	}
}

func TestCollectRanking(t *testing.T) {
	dir := t.TempDir()
	s := mustPlan(t, Options{ConfigFile: writeConfig(t, dir), Grid: []string{"lora.r=1,2,3,4,5"}, Out: filepath.Join(dir, "sw")})
	tr := s.Trials
	// trial-000: finished, best F1 at the first evaluation (load_best_model_at_end).
	writeFile(t, filepath.Join(tr[0].RunDir(), "metrics.jsonl"), `{"type":"eval","f1":70,"exact_match":60,"eval_loss":1.1}
{"type":"train","loss":0.5}
{"type":"eval","f1":65,"exact_match":61,"eval_loss":1.0}
`)
	writeFile(t, filepath.Join(tr[0].AdapterDir(), "metrics.json"), `{"best_f1":70,"final_eval":{"f1":65,"exact_match":61,"eval_loss":1.0}}`)
	// trial-001: finished, no metrics.jsonl: metrics.json alone.
	writeFile(t, filepath.Join(tr[1].AdapterDir(), "metrics.json"), `{"best_f1":80,"final_eval":{"f1":80,"exact_match":75,"eval_loss":0.9}}`)
	// trial-002: unfinished, with an evaluation better than all.
	writeFile(t, filepath.Join(tr[2].RunDir(), "metrics.jsonl"), `{"type":"eval","f1":95,"exact_match":90,"eval_loss":0.2}`+"\n")
	// trial-003: finished, tied with trial-000.
	writeFile(t, filepath.Join(tr[3].AdapterDir(), "metrics.json"), `{"best_f1":70,"final_eval":{"f1":70,"exact_match":50,"eval_loss":2}}`)
	// trial-004: not started.
	res := s.Collect(nil)
	var order []string
	for _, r := range res {
		order = append(order, r.Trial.Name+":"+r.Status)
	}
	want := []string{"trial-001:done", "trial-000:done", "trial-003:done", "trial-002:incomplete", "trial-004:pending"}
	if !slices.Equal(order, want) {
		t.Errorf("ranking %v, want %v", order, want)
	}
	if r := res[1]; r.F1 != 70 || r.ExactMatch != 60 || r.EvalLoss != 1.1 || r.Rank != 2 {
		t.Errorf("trial-000: %+v, want the metrics of its best evaluation", r)
	}
	if r := res[0]; r.F1 != 80 || r.ExactMatch != 75 || r.Rank != 1 {
		t.Errorf("trial-001: %+v", r)
	}
	if r := res[3]; r.Rank != 0 || r.F1 != 95 || !r.HasEval {
		t.Errorf("trial-002: %+v", r)
	}
	if r := res[4]; r.HasEval || r.Rank != 0 {
		t.Errorf("trial-004: %+v", r)
	}
	if _, err := s.Report(); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, filepath.Join(s.Out, "results.csv"))
	if rows[5][0] != "" || rows[5][3] != "" || rows[5][6] != StatusPending {
		t.Errorf("pending row %q", rows[5])
	}
}

func TestResumeRefusesOtherSweep(t *testing.T) {
	exe, _ := useFake(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	out := filepath.Join(dir, "sw")
	if _, err := mustPlan(t, Options{ConfigFile: cfg, Grid: []string{"lora.r=4,8"}, Out: out, Exe: exe}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := Plan(Options{ConfigFile: cfg, Grid: []string{"lora.r=16,32"}, Out: out, Exe: exe})
	if err == nil || !strings.Contains(err.Error(), "made by a different sweep") || !strings.Contains(err.Error(), "use a new --out") {
		t.Errorf("got %v", err)
	}
	// Adding a key changes every trial's settings: refused as well.
	if _, err := Plan(Options{ConfigFile: cfg, Grid: []string{"lora.r=4,8", "lora.alpha=8"}, Out: out}); err == nil {
		t.Error("a grid with another key reused the trial directories")
	}
}

func TestLockRefusesSecondSweep(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDir(dir); err == nil || !strings.Contains(err.Error(), "another loraqa sweep") {
		t.Errorf("second lock: %v", err)
	}
	unlock()
	u2, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	u2()
}
