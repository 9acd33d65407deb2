package sweep

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// emitSweep plans a 2×2 sweep whose values and base --set need shell quoting.
func emitSweep(t *testing.T, sets ...string) (*Sweep, string) {
	t.Helper()
	exe, calls := useFake(t)
	dir := t.TempDir()
	s := mustPlan(t, Options{
		ConfigFile: writeConfig(t, dir),
		Sets:       append([]string{"data.separator=it's | $HOME"}, sets...),
		Grid:       []string{"lora.target_modules=[q_lin, v_lin],[q_lin]", "lora.r=4,8"},
		Parallel:   2, Out: filepath.Join(dir, "sweep dir"), Exe: exe,
	})
	return s, calls
}

func needShell(t *testing.T, sh string) {
	if _, err := exec.LookPath(sh); err != nil {
		t.Skipf("%s not found", sh)
	}
}

// runTask runs a cluster task's shell code with env added.
func runTask(t *testing.T, shell string, args []string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(shell, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkSameTrials checks that task i ran trial i with exactly the arguments
// Run gives it.
func checkSameTrials(t *testing.T, s *Sweep, calls string, n int) {
	t.Helper()
	got := readCalls(t, calls)
	if len(got) != n {
		t.Fatalf("%d train calls, want %d", len(got), n)
	}
	for i, c := range got {
		if want := s.TrainArgs(s.Trials[i]); !slices.Equal(c.Args, want) {
			t.Errorf("task %d ran\n%q\nRun runs\n%q", i, c.Args, want)
		}
	}
}

func TestEmitSlurm(t *testing.T) {
	needShell(t, "bash")
	s, calls := emitSweep(t)
	path, err := s.Emit(EmitSlurm, EmitOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(s.Out, "sweep.slurm") {
		t.Errorf("written to %s", path)
	}
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(path)
	script := string(b)
	for _, want := range []string{"#!/bin/bash\n", "#SBATCH --array=0-3%2\n", "#SBATCH --gres=gpu:1\n", "#SBATCH --job-name=loraqa-sweep\n",
		"#SBATCH --output=" + filepath.Join(s.Out, "slurm-%A_%a.log")} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	// #SBATCH lines are only read before the first command.
	firstCmd := strings.Index(script, "\nset -eu")
	if last := strings.LastIndex(script, "#SBATCH"); firstCmd < 0 || last > firstCmd {
		t.Error("an #SBATCH directive follows a command")
	}
	for _, tr := range s.Trials {
		if _, err := os.Stat(filepath.Join(tr.Dir, "trial.json")); err != nil {
			t.Errorf("emit did not write %s/trial.json", tr.Name)
		}
	}
	// Each array task runs its trial with the arguments Run would use.
	for i := range s.Trials {
		if out, err := runTask(t, "bash", []string{path}, "SLURM_ARRAY_TASK_ID="+strconv.Itoa(i)); err != nil {
			t.Fatalf("task %d: %v\n%s", i, err, out)
		}
	}
	checkSameTrials(t, s, calls, 4)
	// A finished trial's task exits at once.
	out, err := runTask(t, "bash", []string{path}, "SLURM_ARRAY_TASK_ID=0")
	if err != nil || !strings.Contains(out, "trial-000 already finished") || len(readCalls(t, calls)) != 4 {
		t.Errorf("rerun of task 0: %v\n%s", err, out)
	}
	if out, err := runTask(t, "bash", []string{path}, "SLURM_ARRAY_TASK_ID=4"); err == nil || !strings.Contains(out, "no trial number 4") {
		t.Errorf("task 4: %v\n%s", err, out)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SLURM_ARRAY_TASK_ID=") })
	cmd := exec.Command("bash", path)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "submit it with sbatch") {
		t.Errorf("without SLURM_ARRAY_TASK_ID: %v\n%s", err, out)
	}
	// The cluster's results rank like a local run's.
	sum, err := s.Report()
	if err != nil || sum.Done != 4 || sum.Results[0].Trial.Name != "trial-001" {
		t.Fatalf("report: %+v %v", sum, err)
	}
	// --stdout: the same script, nothing written.
	var buf bytes.Buffer
	if p, err := s.Emit(EmitSlurm, EmitOptions{}, &buf); err != nil || p != "" || buf.String() != script {
		t.Errorf("emit to a writer: %q %v (same script: %v)", p, err, buf.String() == script)
	}
}

func TestEmitK8s(t *testing.T) {
	needShell(t, "sh")
	s, calls := emitSweep(t)
	var buf bytes.Buffer
	if _, err := s.Emit(EmitK8s, EmitOptions{JobName: "qa-sweep", Image: "reg.example/loraqa:1"}, &buf); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(&buf)
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		docs = append(docs, d)
	}
	if len(docs) != 2 || docs[0]["kind"] != "ConfigMap" || docs[1]["kind"] != "Job" || docs[1]["apiVersion"] != "batch/v1" {
		t.Fatalf("documents: %v", docs)
	}
	cfgText, _ := os.ReadFile(s.ConfigFile)
	if data := docs[0]["data"].(map[string]any); data["config.yaml"] != string(cfgText) {
		t.Errorf("ConfigMap data %v", data)
	}
	spec := docs[1]["spec"].(map[string]any)
	if spec["completionMode"] != "Indexed" || spec["completions"] != 4 || spec["parallelism"] != 2 {
		t.Errorf("job spec %v", spec)
	}
	pod := spec["template"].(map[string]any)["spec"].(map[string]any)
	if pod["restartPolicy"] != "Never" {
		t.Errorf("restartPolicy %v", pod["restartPolicy"])
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	if c["image"] != "reg.example/loraqa:1" {
		t.Errorf("image %v", c["image"])
	}
	if lim := c["resources"].(map[string]any)["limits"].(map[string]any); lim["nvidia.com/gpu"] != "1" {
		t.Errorf("limits %v", lim)
	}
	var vols []string
	for _, v := range pod["volumes"].([]any) {
		vm := v.(map[string]any)
		if pvc, ok := vm["persistentVolumeClaim"].(map[string]any); ok {
			vols = append(vols, "pvc:"+pvc["claimName"].(string))
		}
		if cm, ok := vm["configMap"].(map[string]any); ok {
			vols = append(vols, "cm:"+cm["name"].(string))
		}
	}
	if !slices.Equal(vols, []string{"pvc:qa-sweep-results", "cm:qa-sweep-config"}) {
		t.Errorf("volumes %v", vols)
	}
	cmd := c["command"].([]any)
	if len(cmd) != 3 || cmd[0] != "/bin/sh" || cmd[1] != "-c" {
		t.Fatalf("command %v", cmd)
	}
	script := cmd[2].(string)
	if !strings.Contains(script, "JOB_COMPLETION_INDEX") {
		t.Errorf("the script does not use JOB_COMPLETION_INDEX:\n%s", script)
	}
	// Completion index i runs trial i with the arguments Run would use (the
	// pod's /sweep and config mount pointed at the local ones).
	exe, _ := os.Executable()
	for i := range s.Trials {
		out, err := runTask(t, "sh", []string{"-c", script}, "JOB_COMPLETION_INDEX="+strconv.Itoa(i),
			"SWEEP_OUT="+s.Out, "SWEEP_CONFIG="+s.ConfigFile, "LORAQA="+exe)
		if err != nil {
			t.Fatalf("index %d: %v\n%s", i, err, out)
		}
	}
	checkSameTrials(t, s, calls, 4)
	if sum, err := s.Report(); err != nil || sum.Done != 4 {
		t.Errorf("report: %+v %v", sum, err)
	}
}

func TestEmitOptions(t *testing.T) {
	s, _ := emitSweep(t, "device=cpu")
	y, err := s.K8sManifest(EmitOptions{JobName: "x", Image: "i", PVC: "p", Cwd: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), "nvidia.com/gpu") {
		t.Error("a cpu config asks for a GPU")
	}
	if sc := string(s.SlurmScript(EmitOptions{JobName: "x", Cwd: "/"})); !strings.Contains(sc, "##SBATCH --gres") {
		t.Error("a cpu config's Slurm script asks for a GPU")
	}
	for _, tc := range []struct {
		kind string
		o    EmitOptions
		flag string
	}{
		{"pbs", EmitOptions{}, "--emit"},
		{EmitK8s, EmitOptions{JobName: "Bad_Name"}, "--job-name"},
		{EmitK8s, EmitOptions{PVC: "no/slash"}, "--pvc"},
	} {
		_, err := s.Emit(tc.kind, tc.o, io.Discard)
		var fe *FlagError
		if !errors.As(err, &fe) || fe.Flag != tc.flag {
			t.Errorf("Emit(%q, %+v) = %v, want a %s error", tc.kind, tc.o, err, tc.flag)
		}
	}
}
