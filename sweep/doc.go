// Package sweep runs hyperparameter sweeps of `loraqa train`: a grid of
// config values (or a seeded random sample of it) expands into trials, each
// a `loraqa train` child process with its values as --set overrides and its
// own run directory, DIR/trial-NNN. Trials are spread over parallel workers
// (one per GPU when devices are given), finished trials are skipped when a
// sweep is run again, and the results are ranked by eval F1 into
// DIR/results.csv and DIR/results.md, with the best trial's config in
// DIR/best_config.yaml and a bar plot in DIR/f1_per_trial.png.
//
// The same trials can be written out as a Slurm job-array script or a
// Kubernetes Indexed Job instead of being run here.
//
// The package only orchestrates processes; it does not load models.
package sweep
