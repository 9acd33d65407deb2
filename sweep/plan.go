package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loraqa/loraqa/config"
	"github.com/loraqa/loraqa/internal/atomicfile"
)

// FlagError is a mistake in one command-line flag of the sweep.
type FlagError struct {
	Flag string
	Err  error
}

func (e *FlagError) Error() string { return e.Flag + ": " + e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// Options describe a sweep.
type Options struct {
	// ConfigFile and Sets are the base configuration every trial starts from
	// (as `loraqa train --config F --set k=v`).
	ConfigFile string
	Sets       []string
	// Grid are the "key=v1,v2" specs.
	Grid []string
	// Random > 0 runs that many combinations drawn from the grid with
	// RandomSeed instead of all of them.
	Random     int
	RandomSeed uint64
	// Parallel is the number of trials run at once; 0 means one per device,
	// or 1 without devices.
	Parallel int
	// Devices are CUDA device numbers ("0" or "cuda:0"); each runs at most
	// one trial at a time, which sees only its GPU (CUDA_VISIBLE_DEVICES).
	Devices []string
	// Out is the sweep directory.
	Out string
	// Exe is the loraqa executable that runs the trials.
	Exe string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Heartbeat is how often running trials report their step; 0 never.
	Heartbeat time.Duration
}

// Trial is one combination of the grid.
type Trial struct {
	// Combo is the combination's index in the grid; the trial is named after
	// it, so a trial keeps its name and directory when the sweep is resumed
	// or its random sample enlarged.
	Combo  int
	Name   string
	Values []string // one per grid key
	Dir    string   // absolute: OUT/NAME
}

// RunDir is the trial's output_dir (metrics.jsonl, checkpoints).
func (t Trial) RunDir() string { return filepath.Join(t.Dir, "run") }

// AdapterDir is the trial's fine_tuned_adapter_path.
func (t Trial) AdapterDir() string { return filepath.Join(t.Dir, "adapter") }

// Finished reports whether the trial's adapter and its metrics.json were saved.
func (t Trial) Finished() bool {
	st, err := os.Stat(filepath.Join(t.AdapterDir(), "metrics.json"))
	return err == nil && st.Mode().IsRegular()
}

// HasCheckpoint reports whether an unfinished trial left a checkpoint to resume from.
func (t Trial) HasCheckpoint() bool {
	m, _ := filepath.Glob(filepath.Join(t.RunDir(), "checkpoint-*"))
	return len(m) > 0
}

// Sweep is a planned sweep: its grid, trials and resolved paths.
type Sweep struct {
	Opts       Options
	Grid       Grid
	Trials     []Trial
	Out        string         // absolute
	ConfigFile string         // absolute, or ""
	Base       *config.Config // the resolved base configuration
	Devices    []int
	Workers    int

	logMu sync.Mutex // serializes progress lines of parallel trials
}

// Plan parses and checks the options: the grid keys, every value and every
// trial's merged config are validated with config.Load before anything runs,
// and trial directories left by an earlier sweep must hold the same settings.
func Plan(o Options) (*Sweep, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if strings.TrimSpace(o.Out) == "" {
		return nil, &FlagError{Flag: "--out", Err: errors.New("missing: name the sweep directory (one trial-NNN directory per trial goes there)")}
	}
	s := &Sweep{Opts: o}
	var err error
	if s.Out, err = filepath.Abs(o.Out); err != nil {
		return nil, &FlagError{Flag: "--out", Err: err}
	}
	if st, err := os.Stat(s.Out); err == nil && !st.IsDir() {
		return nil, &FlagError{Flag: "--out", Err: fmt.Errorf("%s is a file, not a directory", o.Out)}
	}
	if o.ConfigFile != "" {
		if s.ConfigFile, err = filepath.Abs(o.ConfigFile); err != nil {
			return nil, &FlagError{Flag: "--config", Err: err}
		}
	}
	if s.Base, err = config.Load(config.LoadOptions{File: s.ConfigFile, Sets: o.Sets}); err != nil {
		return nil, fmt.Errorf("base config (--config/--set): %w", err)
	}
	if s.Grid, err = ParseGrid(o.Grid); err != nil {
		return nil, err
	}
	if err := s.planDevices(); err != nil {
		return nil, err
	}
	var combos []int
	if o.Random > 0 {
		combos, err = s.Grid.Sample(o.Random, o.RandomSeed)
	} else if o.Random < 0 {
		err = &FlagError{Flag: "--random", Err: fmt.Errorf("want a number of trials > 0, got %d", o.Random)}
	} else {
		combos, err = s.Grid.All()
	}
	if err != nil {
		return nil, err
	}
	width := 3
	if n := s.Grid.Size(1 << 40); n > 0 {
		width = max(width, len(strconv.Itoa(n-1)))
	}
	for _, c := range combos {
		name := fmt.Sprintf("trial-%0*d", width, c)
		s.Trials = append(s.Trials, Trial{Combo: c, Name: name, Values: s.Grid.Combination(c), Dir: filepath.Join(s.Out, name)})
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := s.checkExisting(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sweep) planDevices() error {
	o := s.Opts
	seen := map[int]bool{}
	for _, d := range o.Devices {
		d = strings.TrimSpace(d)
		n, err := strconv.Atoi(strings.TrimPrefix(d, "cuda:"))
		if err != nil || n < 0 {
			return &FlagError{Flag: "--devices", Err: fmt.Errorf("%q is not a CUDA device number (want e.g. --devices 0,1)", d)}
		}
		if seen[n] {
			return &FlagError{Flag: "--devices", Err: fmt.Errorf("device %d is listed twice", n)}
		}
		seen[n] = true
		s.Devices = append(s.Devices, n)
	}
	if len(s.Devices) > 0 {
		for _, p := range s.Grid {
			if p.Key == "device" {
				return &FlagError{Flag: "--grid device", Err: errors.New("the device cannot be swept when --devices places the trials")}
			}
		}
	}
	switch {
	case o.Parallel < 0:
		return &FlagError{Flag: "--parallel", Err: fmt.Errorf("want a number of trials at once > 0, got %d", o.Parallel)}
	case o.Parallel == 0 && len(s.Devices) > 0:
		s.Workers = len(s.Devices)
	case o.Parallel == 0:
		s.Workers = 1
	case len(s.Devices) > 0 && o.Parallel > len(s.Devices):
		return &FlagError{Flag: "--parallel", Err: fmt.Errorf("%d is more than the %d device(s) of --devices: each GPU runs one trial at a time (drop --parallel, or list more devices)", o.Parallel, len(s.Devices))}
	default:
		s.Workers = o.Parallel
	}
	return nil
}

// Settings returns the trial's "key=value" overrides in grid order.
func (s *Sweep) Settings(t Trial) []string {
	out := make([]string, len(s.Grid))
	for i, p := range s.Grid {
		out[i] = p.Key + "=" + t.Values[i]
	}
	return out
}

// SettingsMap returns the trial's values by key.
func (s *Sweep) SettingsMap(t Trial) map[string]string {
	m := make(map[string]string, len(s.Grid))
	for i, p := range s.Grid {
		m[p.Key] = t.Values[i]
	}
	return m
}

// Describe is the trial's settings on one line, "key=value key=value".
func (s *Sweep) Describe(t Trial) string { return strings.Join(s.Settings(t), " ") }

// TrainArgs are the arguments of the trial's `loraqa train` (after the
// executable): the base config, the base --set flags, the trial's values and
// its output paths.
func (s *Sweep) TrainArgs(t Trial) []string {
	args := []string{"train"}
	if s.ConfigFile != "" {
		args = append(args, "--config", s.ConfigFile)
	}
	for _, kv := range s.Opts.Sets {
		args = append(args, "--set", kv)
	}
	for _, kv := range s.Settings(t) {
		args = append(args, "--set", kv)
	}
	return append(args, "--set", "output_dir="+t.RunDir(), "--set", "fine_tuned_adapter_path="+t.AdapterDir())
}

// validate loads the base config with each grid value, then every trial's
// merged config, so a bad value fails before any trial runs.
func (s *Sweep) validate() error {
	for _, p := range s.Grid {
		for _, v := range p.Values {
			sets := append(append([]string(nil), s.Opts.Sets...), p.Key+"="+v)
			if _, err := config.Load(config.LoadOptions{File: s.ConfigFile, Sets: sets}); err != nil {
				return &FlagError{Flag: fmt.Sprintf("--grid %s", p.Key), Err: fmt.Errorf("value %q: %w", v, err)}
			}
		}
	}
	var errs []error
	for _, t := range s.Trials {
		args := s.TrainArgs(t)
		var sets []string
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--set" {
				sets = append(sets, args[i+1])
				i++
			}
		}
		if _, err := config.Load(config.LoadOptions{File: s.ConfigFile, Sets: sets}); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", t.Name, s.Describe(t), err))
			if len(errs) == 5 {
				errs = append(errs, errors.New("(further trials not checked)"))
				break
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("these combinations of the grid are not valid configs; change the --grid values: %w", errors.Join(errs...))
	}
	return nil
}

// trialFile is DIR/trial-NNN/trial.json.
type trialFile struct {
	Trial    string            `json:"trial"`
	Settings map[string]string `json:"settings"`
}

func (s *Sweep) trialJSON(t Trial) []byte {
	b, _ := json.Marshal(trialFile{Trial: t.Name, Settings: s.SettingsMap(t)})
	return b
}

// checkExisting refuses to reuse a trial directory made with other settings
// (a different grid under the same --out).
func (s *Sweep) checkExisting() error {
	for _, t := range s.Trials {
		b, err := os.ReadFile(filepath.Join(t.Dir, "trial.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		var tf trialFile
		if err := json.Unmarshal(b, &tf); err != nil {
			return fmt.Errorf("%s/trial.json: %w (delete it to start the trial over)", t.Dir, err)
		}
		if want := s.SettingsMap(t); !maps.Equal(tf.Settings, want) {
			return fmt.Errorf("%s was made by a different sweep (its settings %s, this sweep's %s): use a new --out, or keep the grid of the first run",
				t.Dir, describeMap(tf.Settings), describeMap(want))
		}
	}
	return nil
}

func describeMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// writeTrialFiles creates every trial's directory and trial.json.
func (s *Sweep) writeTrialFiles() error {
	for _, t := range s.Trials {
		if err := os.MkdirAll(t.Dir, 0o755); err != nil {
			return fmt.Errorf("trial directory: %w", err)
		}
		p := filepath.Join(t.Dir, "trial.json")
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := atomicfile.Write(p, append(s.trialJSON(t), '\n')); err != nil {
			return err
		}
	}
	return nil
}
