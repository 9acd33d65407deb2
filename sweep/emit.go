package sweep

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/loraqa/loraqa/internal/atomicfile"
)

// EmitOptions shape the cluster files written instead of running the trials.
type EmitOptions struct {
	// JobName names the Slurm job and the Kubernetes Job; default "loraqa-sweep".
	JobName string
	// Image is the container image of the Kubernetes pods (it must have
	// loraqa on its PATH); default "loraqa:latest".
	Image string
	// PVC is the PersistentVolumeClaim mounted at /sweep in the pods, which
	// receives the trial directories; default JobName + "-results".
	PVC string
	// Cwd is the directory the Slurm tasks start in, so that relative paths
	// in the config mean what they mean here; "" for the current directory.
	Cwd string
}

// Emit kinds.
const (
	EmitSlurm = "slurm"
	EmitK8s   = "k8s"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func (o *EmitOptions) defaults() error {
	if o.JobName == "" {
		o.JobName = "loraqa-sweep"
	}
	if len(o.JobName) > 50 || !dnsLabel.MatchString(o.JobName) {
		return &FlagError{Flag: "--job-name", Err: fmt.Errorf("%q: want lowercase letters, digits and '-', at most 50 characters (a Kubernetes name)", o.JobName)}
	}
	if o.Image == "" {
		o.Image = "loraqa:latest"
	}
	if o.PVC == "" {
		o.PVC = o.JobName + "-results"
	}
	if !dnsLabel.MatchString(o.PVC) {
		return &FlagError{Flag: "--pvc", Err: fmt.Errorf("%q is not a valid Kubernetes name", o.PVC)}
	}
	if o.Cwd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("current directory: %w", err)
		}
		o.Cwd = wd
	}
	return nil
}

// Emit writes the sweep as a Slurm job-array script (kind "slurm") or a
// Kubernetes Indexed Job manifest (kind "k8s"), one trial per array task or
// completion index, to w, or when w is nil to DIR/sweep.slurm or
// DIR/sweep-job.yaml, whose path it returns. Every trial's directory and
// trial.json are created, so that `loraqa sweep ... --report` ranks the
// trials once they have run.
func (s *Sweep) Emit(kind string, o EmitOptions, w io.Writer) (string, error) {
	if err := o.defaults(); err != nil {
		return "", err
	}
	var (
		data []byte
		name string
		err  error
	)
	switch kind {
	case EmitSlurm:
		data, name = s.SlurmScript(o), "sweep.slurm"
	case EmitK8s:
		name = "sweep-job.yaml"
		data, err = s.K8sManifest(o)
	default:
		return "", &FlagError{Flag: "--emit", Err: fmt.Errorf("%q: want slurm or k8s", kind)}
	}
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.Out, 0o755); err != nil {
		return "", fmt.Errorf("sweep directory: %w", err)
	}
	if err := s.writeTrialFiles(); err != nil {
		return "", err
	}
	if w != nil {
		if _, err := w.Write(data); err != nil {
			return "", fmt.Errorf("writing the %s file: %w", kind, err)
		}
		return "", nil
	}
	path := filepath.Join(s.Out, name)
	return path, atomicfile.Write(path, data)
}

// sq quotes s for a POSIX shell.
func sq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// wantsGPU says whether cluster tasks should ask for a GPU: unless the
// base config runs on the CPU.
func (s *Sweep) wantsGPU() bool { return len(s.Devices) > 0 || s.Base.Device != "cpu" }

// trialScript is the POSIX sh that runs trial number $IDX, with LORAQA,
// OUT and CONFIG set before it. It mirrors Run: a finished trial is skipped,
// an unfinished one with a checkpoint resumes from it.
func (s *Sweep) trialScript(configArg bool) string {
	var b strings.Builder
	b.WriteString("case \"$IDX\" in\n")
	for i, t := range s.Trials {
		fmt.Fprintf(&b, "  %d) TRIAL=%s; TRIAL_JSON=%s\n     set --", i, t.Name, sq(string(s.trialJSON(t))))
		for _, kv := range s.Settings(t) {
			fmt.Fprintf(&b, " --set %s", sq(kv))
		}
		b.WriteString(" ;;\n")
	}
	fmt.Fprintf(&b, "  *) echo \"loraqa sweep: no trial number $IDX (this sweep has %d: 0-%d)\" >&2; exit 2 ;;\nesac\n", len(s.Trials), len(s.Trials)-1)
	b.WriteString(`DIR="$OUT/$TRIAL"
if [ -f "$DIR/adapter/metrics.json" ]; then
  echo "loraqa sweep: $TRIAL already finished ($DIR/adapter/metrics.json)" >&2
  exit 0
fi
mkdir -p "$DIR"
[ -f "$DIR/trial.json" ] || printf '%s\n' "$TRIAL_JSON" > "$DIR/trial.json"
set -- "$@" --set "output_dir=$DIR/run" --set "fine_tuned_adapter_path=$DIR/adapter"
if ls -d "$DIR/run"/checkpoint-* >/dev/null 2>&1; then
  set -- "$@" --resume latest
else
  rm -rf "$DIR/run" "$DIR/adapter"
fi
`)
	b.WriteString(`echo "loraqa sweep: $TRIAL (task $IDX)" >&2` + "\n")
	b.WriteString(`exec "$LORAQA" train`)
	if configArg {
		b.WriteString(` --config "$CONFIG"`)
	}
	for _, kv := range s.Opts.Sets {
		b.WriteString(" --set " + sq(kv))
	}
	b.WriteString(` "$@"` + "\n")
	return b.String()
}

// SlurmScript is a bash job-array script: array task i runs trial i of the
// sweep (0-based, in the order of results.csv's trial column).
func (s *Sweep) SlurmScript(o EmitOptions) []byte {
	var b bytes.Buffer
	n := len(s.Trials)
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# loraqa sweep as a Slurm job array: %d trials of %s, one per array task.\n", n, s.gridSummary())
	fmt.Fprintf(&b, "# Submit:      sbatch %s\n", filepath.Join(s.Out, "sweep.slurm"))
	b.WriteString("#              (LORAQA=/path/to/loraqa sbatch ... picks another binary; the paths must be on a shared filesystem)\n")
	b.WriteString("# Afterwards:  the same `loraqa sweep` command with --report ranks the trials into results.csv.\n")
	b.WriteString("# A task whose trial already finished exits at once; an interrupted one resumes from its checkpoint.\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", o.JobName)
	array := fmt.Sprintf("0-%d", n-1)
	if s.Opts.Parallel > 0 {
		array += fmt.Sprintf("%%%d", s.Opts.Parallel)
	}
	fmt.Fprintf(&b, "#SBATCH --array=%s\n", array)
	fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(s.Out, "slurm-%A_%a.log"))
	if s.wantsGPU() {
		b.WriteString("#SBATCH --gres=gpu:1\n")
	} else {
		b.WriteString("##SBATCH --gres=gpu:1   (the config's device is cpu)\n")
	}
	b.WriteString("set -eu\n")
	b.WriteString("IDX=${SLURM_ARRAY_TASK_ID:?this script is a Slurm job array: submit it with sbatch}\n")
	fmt.Fprintf(&b, "LORAQA=${LORAQA:-%s}\n", sq(s.Opts.Exe))
	if s.ConfigFile != "" {
		fmt.Fprintf(&b, "CONFIG=%s\n", sq(s.ConfigFile))
	}
	fmt.Fprintf(&b, "OUT=%s\n", sq(s.Out))
	fmt.Fprintf(&b, "cd %s\n", sq(o.Cwd))
	b.WriteString(s.trialScript(s.ConfigFile != ""))
	return b.Bytes()
}

// Kubernetes objects, with only the fields the manifest uses.
type (
	k8sMeta struct {
		Name   string            `yaml:"name,omitempty"`
		Labels map[string]string `yaml:"labels,omitempty"`
	}
	k8sConfigMap struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
	}
	k8sJob struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   k8sMeta    `yaml:"metadata"`
		Spec       k8sJobSpec `yaml:"spec"`
	}
	k8sJobSpec struct {
		CompletionMode string         `yaml:"completionMode"`
		Completions    int            `yaml:"completions"`
		Parallelism    int            `yaml:"parallelism"`
		BackoffLimit   int            `yaml:"backoffLimit"`
		Template       k8sPodTemplate `yaml:"template"`
	}
	k8sPodTemplate struct {
		Metadata k8sMeta    `yaml:"metadata"`
		Spec     k8sPodSpec `yaml:"spec"`
	}
	k8sPodSpec struct {
		RestartPolicy string         `yaml:"restartPolicy"`
		Containers    []k8sContainer `yaml:"containers"`
		Volumes       []k8sVolume    `yaml:"volumes"`
	}
	k8sContainer struct {
		Name         string           `yaml:"name"`
		Image        string           `yaml:"image"`
		Command      []string         `yaml:"command"`
		Resources    *k8sResources    `yaml:"resources,omitempty"`
		VolumeMounts []k8sVolumeMount `yaml:"volumeMounts"`
	}
	k8sResources struct {
		Limits map[string]string `yaml:"limits"`
	}
	k8sVolumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly,omitempty"`
	}
	k8sVolume struct {
		Name                  string        `yaml:"name"`
		ConfigMap             *k8sConfigRef `yaml:"configMap,omitempty"`
		PersistentVolumeClaim *k8sClaimRef  `yaml:"persistentVolumeClaim,omitempty"`
	}
	k8sConfigRef struct {
		Name string `yaml:"name"`
	}
	k8sClaimRef struct {
		ClaimName string `yaml:"claimName"`
	}
)

// K8sSweepDir and K8sConfigDir are where the pods see the sweep directory
// and the base config file.
const (
	K8sSweepDir  = "/sweep"
	K8sConfigDir = "/etc/loraqa"
)

// K8sManifest is a ConfigMap holding the base config file and a batch/v1
// Indexed Job whose completion index i runs trial i of the sweep.
func (s *Sweep) K8sManifest(o EmitOptions) ([]byte, error) {
	n := len(s.Trials)
	labels := map[string]string{"app.kubernetes.io/name": "loraqa", "loraqa/sweep": o.JobName}
	var docs []any
	configName := ""
	if s.ConfigFile != "" {
		data, err := os.ReadFile(s.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		configName = "config" + strings.ToLower(filepath.Ext(s.ConfigFile))
		docs = append(docs, k8sConfigMap{APIVersion: "v1", Kind: "ConfigMap",
			Metadata: k8sMeta{Name: o.JobName + "-config", Labels: labels},
			Data:     map[string]string{configName: string(data)}})
	}
	var script strings.Builder
	script.WriteString("set -eu\n")
	script.WriteString("IDX=${JOB_COMPLETION_INDEX:?not set: run this as a Kubernetes Indexed Job}\n")
	script.WriteString("LORAQA=${LORAQA:-loraqa}\n")
	if configName != "" {
		fmt.Fprintf(&script, "CONFIG=${SWEEP_CONFIG:-%s/%s}\n", K8sConfigDir, configName)
	}
	fmt.Fprintf(&script, "OUT=${SWEEP_OUT:-%s}\n", K8sSweepDir)
	script.WriteString(s.trialScript(configName != ""))

	c := k8sContainer{Name: "trial", Image: o.Image, Command: []string{"/bin/sh", "-c", script.String()},
		VolumeMounts: []k8sVolumeMount{{Name: "sweep", MountPath: K8sSweepDir}}}
	vols := []k8sVolume{{Name: "sweep", PersistentVolumeClaim: &k8sClaimRef{ClaimName: o.PVC}}}
	if configName != "" {
		c.VolumeMounts = append(c.VolumeMounts, k8sVolumeMount{Name: "config", MountPath: K8sConfigDir, ReadOnly: true})
		vols = append(vols, k8sVolume{Name: "config", ConfigMap: &k8sConfigRef{Name: o.JobName + "-config"}})
	}
	if s.wantsGPU() {
		c.Resources = &k8sResources{Limits: map[string]string{"nvidia.com/gpu": "1"}}
	}
	par := n
	if s.Opts.Parallel > 0 {
		par = min(n, s.Opts.Parallel)
	}
	docs = append(docs, k8sJob{APIVersion: "batch/v1", Kind: "Job",
		Metadata: k8sMeta{Name: o.JobName, Labels: labels},
		Spec: k8sJobSpec{CompletionMode: "Indexed", Completions: n, Parallelism: par, BackoffLimit: n,
			Template: k8sPodTemplate{Metadata: k8sMeta{Labels: labels},
				Spec: k8sPodSpec{RestartPolicy: "Never", Containers: []k8sContainer{c}, Volumes: vols}}}})

	var b bytes.Buffer
	fmt.Fprintf(&b, "# loraqa sweep as a Kubernetes Indexed Job: %d trials of %s, one per completion index.\n", n, s.gridSummary())
	b.WriteString("# Apply:       kubectl apply -f sweep-job.yaml\n")
	fmt.Fprintf(&b, "# The image (%s) must have loraqa on its PATH and the model and data paths the config names;\n", o.Image)
	fmt.Fprintf(&b, "# the trial directories go to the PersistentVolumeClaim %q, mounted at %s.\n", o.PVC, K8sSweepDir)
	b.WriteString("# Afterwards:  copy them into the sweep directory and run the same `loraqa sweep` command with --report.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("k8s manifest: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("k8s manifest: %w", err)
	}
	return b.Bytes(), nil
}
