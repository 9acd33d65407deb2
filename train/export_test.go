package train

// Hooks that only the tests use.

// ForceGradScaler turns fp16's loss scaling on for a trainer whatever its
// dtype (the CPU has no fp16 training), so that a test can follow the
// scaler through a run and a resume.
func ForceGradScaler(t *Trainer, cfg GradScalerConfig) {
	t.scaler = NewGradScaler(cfg, t.Model.Device)
}

// ScalerStateOf reads a trainer's loss-scaler state.
func ScalerStateOf(t *Trainer) ScalerState { return t.scaler.State() }

// StopAfterEpochs makes a trainer stop (as if interrupted) after n epochs.
func StopAfterEpochs(t *Trainer, n int) { t.stopAfterEpochs = n }
