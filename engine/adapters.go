package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/torch"
)

// LoadAdapter loads the adapter in dir and answers with it as name from
// then on. The model worker injects it between two cycles, so the answers
// in flight are not disturbed; one whose shapes do not fit the base is
// refused (ErrBadAdapter) and the engine goes on as before. A name already
// loaded is ErrAdapterExists; an engine that merged its adapter, or whose
// adapters train the base's biases, cannot load others (ErrBadAdapter).
// ctx bounds the wait for the worker to take the job, not the job.
func (e *Engine) LoadAdapter(ctx context.Context, name, dir string) (AdapterInfo, error) {
	if e.opt.Merge {
		return AdapterInfo{}, kindf(ErrBadAdapter, "this engine folded its adapter into the weights (Options.Merge): it cannot load others")
	}
	if err := checkName(name); err != nil {
		return AdapterInfo{}, err
	}
	if _, err := e.lookup(name); err == nil {
		return AdapterInfo{}, kindf(ErrAdapterExists, "adapter %q is already served: unload it first", name)
	}
	d, err := peft.OpenDir(dir)
	if err != nil {
		return AdapterInfo{}, withKind(ErrBadAdapter, fmt.Errorf("adapter %s: %w", name, err))
	}
	sv, err := e.openAdapter(NamedAdapter{Name: name, Dir: dir}, d, true)
	if err != nil {
		return AdapterInfo{}, withKind(ErrBadAdapter, err)
	}
	if err := ctx.Err(); err != nil {
		return AdapterInfo{}, err
	}
	err = e.onWorker(ctx, func() error { return e.injectAdapter(sv, d, true) })
	switch {
	case errors.Is(err, ErrClosed):
		return AdapterInfo{}, err
	case err != nil:
		return AdapterInfo{}, withKind(ErrBadAdapter, fmt.Errorf("adapter %q does not fit the base model: %w", name, err))
	}
	e.amu.Lock()
	if e.byName[name] != nil { // loaded meanwhile by another call
		e.amu.Unlock()
		_ = e.onWorkerDrop(context.Background(), sv)
		return AdapterInfo{}, kindf(ErrAdapterExists, "adapter %q is already served", name)
	}
	e.models = append(e.models, sv)
	e.byName[sv.Name] = sv
	e.amu.Unlock()
	return e.info(sv, false), nil
}

// UnloadAdapter stops answering with an adapter and frees its tensors.
// New queries for it fail with ErrUnknownAdapter at once; those already
// queued are answered first (the worker frees it after them). The default
// adapter and a merged one cannot be unloaded (ErrBadAdapter). ctx bounds
// the wait for the worker to take the job: when it ends first, the adapter
// stays loaded and ctx's error is returned.
func (e *Engine) UnloadAdapter(ctx context.Context, name string) error {
	e.amu.Lock()
	sv := e.byName[name]
	switch {
	case sv == nil:
		e.amu.Unlock()
		return kindf(ErrUnknownAdapter, "unknown adapter %q", name)
	case sv == e.models[0]:
		e.amu.Unlock()
		return kindf(ErrBadAdapter, "adapter %q is the default: it cannot be unloaded", name)
	case e.opt.Merge:
		e.amu.Unlock()
		return kindf(ErrBadAdapter, "adapter %q is merged into the weights: it cannot be unloaded", name)
	}
	delete(e.byName, name)
	for i, o := range e.models {
		if o == sv {
			e.models = append(e.models[:i:i], e.models[i+1:]...)
			break
		}
	}
	e.amu.Unlock()
	err := e.onWorkerDrop(ctx, sv)
	switch {
	case errors.Is(err, ErrClosed): // Close frees it: put it back in the list
		e.amu.Lock()
		e.models = append(e.models, sv)
		e.amu.Unlock()
		return err
	case ctx.Err() != nil && errors.Is(err, ctx.Err()): // never queued: it stays loaded
		e.amu.Lock()
		e.models = append(e.models, sv)
		e.byName[name] = sv
		e.amu.Unlock()
		return err
	}
	if err != nil {
		return fmt.Errorf("unloading adapter %q: %w", name, err)
	}
	return nil
}

// onWorkerDrop frees an adapter on the worker: it is attached (so that
// Drop finds its layers), dropped, and the model left without adapter.
func (e *Engine) onWorkerDrop(ctx context.Context, sv *served) error {
	return e.onWorker(ctx, func() error {
		sv.gone = true
		if err := e.activate(sv); err != nil {
			return err
		}
		sv.adapter.Drop()
		e.active = nil
		torch.ReleaseMemory()
		return nil
	})
}
