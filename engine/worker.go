package engine

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/internal/faults"
	"github.com/loraqa/loraqa/peft"
	"github.com/loraqa/loraqa/qa"
	"github.com/loraqa/loraqa/torch"
)

// job is one query queued for the model worker: its windows, and where the
// logits go.
type job struct {
	ctx     context.Context
	model   *served
	feats   []data.Feature
	done    chan jobResult // buffered: the worker never waits on it
	replied bool           // the worker's own
	ctrl    func()         // a control job (adapter load/unload): run by the worker between cycles
}

type jobResult struct {
	starts, ends [][]float32
	err          error
}

func (j *job) reply(r jobResult) {
	if !j.replied {
		j.replied = true
		j.done <- r
	}
}

// enqueue queues all jobs or none: ErrBusy when the queue has no room for
// them, ErrClosed once the engine is shutting down.
func (e *Engine) enqueue(jobs []*job) error {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.pending+len(jobs) > e.opt.Queue {
		return fmt.Errorf("%w (%d of %d queries waiting); retry later", ErrBusy, e.pending, e.opt.Queue)
	}
	e.pending += len(jobs)
	for _, j := range jobs {
		e.queue <- j // never blocks: the channel holds Queue jobs
	}
	return nil
}

func (e *Engine) logf(format string, a ...any) {
	if e.opt.Logf != nil {
		e.opt.Logf(format, a...)
	}
}

// take receives one job from the queue, waiting until the timer fires (nil:
// for ever); ok is false when the queue is closed and empty or time is up.
func (e *Engine) take(timer *time.Timer) (*job, bool) {
	var j *job
	var ok bool
	if timer == nil {
		j, ok = <-e.queue
	} else {
		select {
		case j, ok = <-e.queue:
		case <-timer.C:
			return nil, false
		}
	}
	if ok {
		e.qmu.Lock()
		e.pending--
		e.qmu.Unlock()
	}
	return j, ok
}

// gather adds queued queries to batch up to MaxBatch: those that arrive
// until timer fires, or (timer nil) those queued now. A control job ends
// the gathering and is returned.
func (e *Engine) gather(batch []*job, timer *time.Timer) ([]*job, *job) {
	for len(batch) < e.opt.MaxBatch {
		if timer == nil && len(e.queue) == 0 {
			break
		}
		j, ok := e.take(timer)
		if !ok {
			break
		}
		if j.ctrl != nil {
			return batch, j
		}
		batch = append(batch, j)
	}
	return batch, nil
}

// work is the model worker: the only goroutine that runs the model, on one
// locked OS thread (LibTorch's grad mode and thread count are per thread).
// Each cycle takes up to MaxBatch queries, gathered for at most BatchWindow
// after the first, and runs them adapter by adapter.
func (e *Engine) work() {
	defer close(e.workerDone)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torch.SetThreads(e.opt.Threads)
	worked := false // a cycle ran since the memory was last released
	for {
		var first *job
		var ok bool
		if worked && e.opt.ReleaseIdle > 0 {
			timer := time.NewTimer(e.opt.ReleaseIdle)
			first, ok = e.take(timer)
			timer.Stop()
			if !ok { // idle (or closed: the next take says so)
				torch.ReleaseMemory()
				worked = false
				e.obs.MemoryReleased()
				continue
			}
		} else if first, ok = e.take(nil); !ok {
			return
		}
		worked = true
		if first.ctrl != nil {
			first.ctrl()
			continue
		}
		// A control job ends the gathering: the queries queued before it
		// are answered, then it runs.
		batch, ctrl := []*job{first}, (*job)(nil)
		if e.opt.BatchWindow > 0 {
			timer := time.NewTimer(e.opt.BatchWindow)
			batch, ctrl = e.gather(batch, timer)
			timer.Stop()
		}
		if ctrl == nil {
			batch, ctrl = e.gather(batch, nil)
		}
		faults.BeforeCycle(e)
		e.cycle(batch)
		if ctrl != nil {
			ctrl.ctrl()
		}
	}
}

// cycle runs one batch: jobs whose request has ended are skipped, the rest
// are grouped by adapter (in order of arrival) and each group runs with its
// adapter attached.
func (e *Engine) cycle(batch []*job) {
	start := time.Now()
	var order []*served
	groups := map[*served][]*job{}
	n := 0
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.reply(jobResult{err: err})
			continue
		}
		if j.model.gone {
			j.reply(jobResult{err: ErrUnloaded})
			continue
		}
		if groups[j.model] == nil {
			order = append(order, j.model)
		}
		groups[j.model] = append(groups[j.model], j)
		n++
	}
	if n == 0 {
		return
	}
	e.obs.CycleStart(n)
	if !e.opt.Fuse || e.opt.SeparateAdapters || len(order) == 1 || !e.runMixed(order, groups) {
		for _, sv := range order {
			e.runGroup(sv, groups[sv])
		}
	}
	e.obs.CycleEnd(time.Since(start))
}

// runMixed answers the jobs of several adapters through shared forwards: a
// peft.Mixture runs the base once per batch and each row's own adapter. It
// reports false, having answered nothing, when an adapter cannot be mixed
// (DoRA); the caller then runs them one adapter at a time. A panic in the
// model fails these jobs, not the engine.
func (e *Engine) runMixed(order []*served, groups map[*served][]*job) (answered bool) {
	var adapters []*peft.Adapter
	index := map[*served]int{}
	for _, sv := range order {
		index[sv] = -1 // no adapter: the base model alone
		if sv.adapter != nil {
			index[sv] = len(adapters)
			adapters = append(adapters, sv.adapter)
		}
	}
	if err := e.detach(); err != nil {
		return false
	}
	mx, err := peft.Mix(e.model, adapters)
	if err != nil {
		return false
	}
	var jobs []*job
	defer func() {
		mx.Remove()
		if r := recover(); r != nil {
			err := fmt.Errorf("model worker: %v", r)
			e.logf("engine: %v", err)
			for _, j := range jobs {
				j.reply(jobResult{err: err})
			}
			answered = true
		}
	}()
	var feats []data.Feature
	var rowAdapter []int // by feature: its adapter's index in adapters
	for _, sv := range order {
		windows := 0
		for _, j := range groups[sv] {
			jobs = append(jobs, j)
			feats = append(feats, j.feats...)
			for range j.feats {
				rowAdapter = append(rowAdapter, index[sv])
			}
			windows += len(j.feats)
		}
		e.obs.Forward(sv.Name, windows, len(groups[sv]))
	}
	rows := make([]int, 0, e.opt.BatchSize)
	starts, ends, err := qa.LogitsRouted(context.Background(), e.model, feats, e.opt.BatchSize, func(idx []int) {
		rows = rows[:0]
		for _, fi := range idx {
			rows = append(rows, rowAdapter[fi])
		}
		mx.Route(rows)
	})
	replySplit(jobs, starts, ends, err)
	return true
}

// runGroup answers the jobs of one adapter. A panic in the model fails these
// jobs, not the engine.
func (e *Engine) runGroup(sv *served, jobs []*job) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("model worker: %v", r)
			e.logf("engine: %v", err)
			for _, j := range jobs {
				j.reply(jobResult{err: err})
			}
		}
	}()
	if err := e.activate(sv); err != nil {
		for _, j := range jobs {
			j.reply(jobResult{err: err})
		}
		return
	}
	if e.opt.Fuse {
		e.runFused(sv, jobs)
		return
	}
	for _, j := range jobs {
		e.obs.Forward(sv.Name, len(j.feats), 1)
		starts, ends, _, err := qa.Logits(j.ctx, e.model, j.feats, e.opt.BatchSize, false)
		j.reply(jobResult{starts: starts, ends: ends, err: err})
	}
}

// runFused runs the windows of all jobs through one Logits call.
func (e *Engine) runFused(sv *served, jobs []*job) {
	var feats []data.Feature
	for _, j := range jobs {
		feats = append(feats, j.feats...)
	}
	e.obs.Forward(sv.Name, len(feats), len(jobs))
	starts, ends, _, err := qa.Logits(context.Background(), e.model, feats, e.opt.BatchSize, false)
	replySplit(jobs, starts, ends, err)
}

// replySplit hands each job its own rows of logits computed for all jobs'
// windows in order, or err to every job.
func replySplit(jobs []*job, starts, ends [][]float32, err error) {
	off := 0
	for _, j := range jobs {
		n := len(j.feats)
		if err != nil {
			j.reply(jobResult{err: err})
			continue
		}
		j.reply(jobResult{starts: starts[off : off+n], ends: ends[off : off+n]})
		off += n
	}
}

// onWorker runs fn on the model worker between two cycles, after the
// queries already queued, and returns its error (a panic in fn, LibTorch's
// included, is returned as an error). It waits for fn even when the caller
// has gone: a change to the adapters is never left half known.
func (e *Engine) onWorker(ctx context.Context, fn func() error) error {
	select {
	case e.admin <- struct{}{}:
		defer func() { <-e.admin }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	j := &job{ctrl: func() {
		defer func() {
			if r := recover(); r != nil {
				if e := torch.AsError(r); e != nil {
					done <- e
					return
				}
				done <- fmt.Errorf("model worker: %v", r)
			}
		}()
		done <- fn()
	}}
	e.qmu.Lock()
	if e.closed {
		e.qmu.Unlock()
		return ErrClosed
	}
	e.pending++
	e.queue <- j // never blocks: the channel has room for Queue queries and one control job
	e.qmu.Unlock()
	return <-done
}

// detach takes the attached adapter, if any, off the model.
func (e *Engine) detach() error {
	if e.active != nil && e.active.adapter != nil {
		if err := e.active.adapter.Detach(); err != nil {
			return fmt.Errorf("detaching adapter %s: %w", e.active.Name, err)
		}
	}
	e.active = nil
	return nil
}

// activate attaches sv's adapter to the model, detaching the one attached.
func (e *Engine) activate(sv *served) error {
	if e.active == sv {
		return nil
	}
	if err := e.detach(); err != nil {
		return err
	}
	if sv.adapter != nil {
		if err := sv.adapter.Attach(); err != nil {
			return fmt.Errorf("attaching adapter %s: %w", sv.Name, err)
		}
	}
	e.active = sv
	e.obs.AdapterSwitch()
	return nil
}
