package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/loraqa/loraqa/sweep"
)

func runSweep(ctx context.Context, args []string) error {
	fs := newFlags("sweep", "[--config F] [--set k=v ...] --grid key=v1,v2 [--grid ...] --out DIR\n"+
		"       [--random N [--random-seed S]] [--parallel N] [--devices 0,1,...] [--report | --dry-run | --emit slurm|k8s [--stdout]]\n\n"+
		"Each combination of the --grid values is a trial: `loraqa train` with those values as --set, in DIR/trial-NNN.\n"+
		"Running the same command again skips finished trials and resumes interrupted ones from their checkpoint.\n"+
		"DIR/results.csv and results.md rank the trials by eval F1; DIR/best_config.yaml is the best trial's config.")
	var cf configFlags
	cf.register(fs)
	var grid stringList
	fs.Var(&grid, "grid", "key=v1,v2,... values of one config key to sweep (repeatable; a list value is written [a,b])")
	out := fs.String("out", "", "sweep directory (one trial-NNN directory per trial, results.csv, results.md)")
	random := fs.Int("random", 0, "run N random combinations of the grid instead of all of them")
	seed := fs.Uint64("random-seed", 1, "seed of --random's draw (the same seed keeps the same trials)")
	parallel := fs.Int("parallel", 0, "trials run at once (default 1, or one per device with --devices)")
	devices := fs.String("devices", "", "comma-separated CUDA devices, e.g. 0,1: each runs one trial at a time")
	report := fs.Bool("report", false, "run nothing: rank the trials found in DIR and write the results")
	dryRun := fs.Bool("dry-run", false, "print the trials and their train commands, and run nothing")
	emit := fs.String("emit", "", "write the trials as a Slurm job array (slurm: DIR/sweep.slurm) or a Kubernetes Indexed Job (k8s: DIR/sweep-job.yaml) instead of running them")
	stdout := fs.Bool("stdout", false, "with --emit: print the file instead of writing it into DIR")
	jobName := fs.String("job-name", "loraqa-sweep", "with --emit: the Slurm job / Kubernetes Job name")
	image := fs.String("image", "loraqa:latest", "with --emit k8s: container image with loraqa on its PATH")
	pvc := fs.String("pvc", "", "with --emit k8s: PersistentVolumeClaim for the trial directories (default JOB-NAME-results)")
	heartbeat := fs.Duration("progress-every", 30*time.Second, "how often running trials report their training step (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	modes := 0
	for _, on := range []bool{*report, *dryRun, *emit != ""} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return usagef("--report, --dry-run and --emit do not go together")
	}
	if *stdout && *emit == "" {
		return usagef("--stdout goes with --emit slurm|k8s")
	}
	if *emit != "" && *emit != sweep.EmitSlurm && *emit != sweep.EmitK8s {
		return usagef("--emit %q: want slurm or k8s", *emit)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the loraqa executable to run the trials: %w", err)
	}
	var devs []string
	if strings.TrimSpace(*devices) != "" {
		devs = strings.Split(*devices, ",")
	}
	s, err := sweep.Plan(sweep.Options{
		ConfigFile: cf.file, Sets: cf.sets, Grid: grid,
		Random: *random, RandomSeed: *seed, Parallel: *parallel, Devices: devs,
		Out: *out, Exe: exe, Log: os.Stderr, Heartbeat: *heartbeat,
	})
	var fe *sweep.FlagError
	if errors.As(err, &fe) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	switch {
	case *dryRun:
		return sweepDryRun(s)
	case *report:
		_, err := s.Report()
		return err
	case *emit != "":
		eo := sweep.EmitOptions{JobName: *jobName, Image: *image, PVC: *pvc}
		if *stdout {
			_, err := s.Emit(*emit, eo, os.Stdout)
			return sweepUsage(err)
		}
		path, err := s.Emit(*emit, eo, nil)
		if err != nil {
			return sweepUsage(err)
		}
		logf("sweep: wrote %s (%d trials)", path, len(s.Trials))
		if *emit == sweep.EmitSlurm {
			logf("sweep: submit it with: sbatch %s", path)
		} else {
			logf("sweep: apply it with: kubectl apply -f %s", path)
		}
		logf("sweep: when the trials have run, the same command with --report instead of --emit ranks them")
		return nil
	}
	_, err = s.Run(ctx)
	return err
}

func sweepUsage(err error) error {
	var fe *sweep.FlagError
	if errors.As(err, &fe) {
		return usagef("%v", err)
	}
	return err
}

// sweepDryRun prints each trial with its state and the command that runs it.
func sweepDryRun(s *sweep.Sweep) error {
	fmt.Printf("%d trials in %s (%d at a time)\n", len(s.Trials), s.Out, s.Workers)
	for _, t := range s.Trials {
		state := "to run"
		switch {
		case t.Finished():
			state = "finished (skipped)"
		case t.HasCheckpoint():
			state = "to resume from its checkpoint"
		}
		fmt.Printf("%s  %s  [%s]\n  %s %s\n", t.Name, s.Describe(t), state, s.Opts.Exe, shellJoin(s.TrainArgs(t)))
	}
	return nil
}

func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
