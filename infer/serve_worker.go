package infer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/loraqa/loraqa/data"
	"github.com/loraqa/loraqa/torch"
	"github.com/loraqa/loraqa/train"
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

// errUnloaded fails a query whose adapter was unloaded after the query had
// found it (requests queued before the unload are answered).
var errUnloaded = errors.New("the adapter was unloaded")

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

// answer windows the queries, queues them, waits for their logits and turns
// them into answers.
func (s *Server) answer(ctx context.Context, ps []parsed) ([]AnswerResponse, *apiError) {
	jobs, e := s.prepare(ctx, ps)
	if e != nil {
		return nil, e
	}
	if e := s.enqueue(jobs); e != nil {
		return nil, e
	}
	out := make([]AnswerResponse, len(ps))
	for i, j := range jobs {
		var r jobResult
		select {
		case r = <-j.done:
		case <-ctx.Done():
			return nil, ctxError(ctx, s.opt.Timeout)
		}
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, ctxError(ctx, s.opt.Timeout)
			}
			if errors.Is(r.err, errUnloaded) {
				return nil, errorf(http.StatusNotFound, "adapter %q was unloaded", j.model.Name)
			}
			return nil, errorf(http.StatusInternalServerError, "model: %v", r.err)
		}
		preds, err := data.Postprocess([]data.Example{example(ps[i].Query)}, j.feats, r.starts, r.ends, s.opt.Post)
		if err != nil {
			return nil, errorf(http.StatusInternalServerError, "%v", err)
		}
		out[i] = AnswerResponse{Answers: Answers(preds[0], ps[i].topK), Adapter: j.model.Name}
	}
	return out, nil
}

// prepare finds each query's adapter (404 when unknown) and cuts its context
// into windows (422 when that cannot be done, e.g. a question longer than a
// window).
func (s *Server) prepare(ctx context.Context, ps []parsed) ([]*job, *apiError) {
	jobs := make([]*job, len(ps))
	for i, p := range ps {
		where := ""
		if len(ps) > 1 {
			where = fmt.Sprintf("request %d: ", i)
		}
		sv, e := s.lookup(p.adapter)
		if e != nil {
			e.msg = where + e.msg
			return nil, e
		}
		feats, err := s.featurize(sv, p.Query)
		if err != nil {
			return nil, errorf(http.StatusUnprocessableEntity, "%scannot cut the context into windows: %v", where, err)
		}
		jobs[i] = &job{ctx: ctx, model: sv, feats: feats, done: make(chan jobResult, 1)}
	}
	return jobs, nil
}

func (s *Server) lookup(name string) (*served, *apiError) {
	s.amu.RLock()
	defer s.amu.RUnlock()
	if name == "" {
		return s.models[0], nil
	}
	if sv := s.byName[name]; sv != nil {
		return sv, nil
	}
	if len(s.byName) == 0 {
		return nil, errorf(http.StatusNotFound, "unknown adapter %q: this server answers with its base model only", name)
	}
	return nil, errorf(http.StatusNotFound, "unknown adapter %q (GET %s lists them)", name, pathAdapters)
}

// ctxError is the reply to a request whose context ended: its timeout, or
// the client going away (499, as nginx logs it; nobody reads it).
func ctxError(ctx context.Context, timeout time.Duration) *apiError {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errorf(http.StatusGatewayTimeout, "no answer within the request timeout of %v", timeout)
	}
	return errorf(499, "the client closed the request")
}

// enqueue queues all jobs or none: 429 when the queue has no room for them,
// 503 once the server is shutting down.
func (s *Server) enqueue(jobs []*job) *apiError {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.closed {
		return errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	if s.pending+len(jobs) > s.opt.Queue {
		return errorf(http.StatusTooManyRequests, "the queue is full (%d of %d queries waiting); retry later", s.pending, s.opt.Queue)
	}
	s.pending += len(jobs)
	for _, j := range jobs {
		s.queue <- j // never blocks: the channel holds Queue jobs
	}
	return nil
}

// take receives one job from the queue, waiting until the timer fires (nil:
// for ever); ok is false when the queue is closed and empty or time is up.
func (s *Server) take(timer *time.Timer) (*job, bool) {
	var j *job
	var ok bool
	if timer == nil {
		j, ok = <-s.queue
	} else {
		select {
		case j, ok = <-s.queue:
		case <-timer.C:
			return nil, false
		}
	}
	if ok {
		s.qmu.Lock()
		s.pending--
		s.qmu.Unlock()
	}
	return j, ok
}

// work is the model worker: the only goroutine that runs the model, on one
// locked OS thread (LibTorch's grad mode and thread count are per thread).
// Each cycle takes up to MaxBatch queries, gathered for at most BatchWindow
// after the first, and runs them adapter by adapter.
func (s *Server) work() {
	defer close(s.workerDone)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torch.SetThreads(s.opt.Threads)
	for {
		first, ok := s.take(nil)
		if !ok {
			return
		}
		if first.ctrl != nil {
			first.ctrl()
			continue
		}
		// A control job ends the gathering: the queries queued before it
		// are answered, then it runs.
		batch := []*job{first}
		var ctrl *job
		if s.opt.BatchWindow > 0 {
			timer := time.NewTimer(s.opt.BatchWindow)
			for len(batch) < s.opt.MaxBatch && ctrl == nil {
				j, ok := s.take(timer)
				if !ok {
					break
				}
				if j.ctrl != nil {
					ctrl = j
					break
				}
				batch = append(batch, j)
			}
			timer.Stop()
		}
		for len(batch) < s.opt.MaxBatch && ctrl == nil && len(s.queue) > 0 {
			j, ok := s.take(nil)
			if !ok {
				break
			}
			if j.ctrl != nil {
				ctrl = j
				break
			}
			batch = append(batch, j)
		}
		if s.opt.cycleHook != nil {
			s.opt.cycleHook()
		}
		s.cycle(batch)
		if ctrl != nil {
			ctrl.ctrl()
		}
	}
}

// cycle runs one batch: jobs whose request has ended are skipped, the rest
// are grouped by adapter (in order of arrival) and each group runs with its
// adapter attached.
func (s *Server) cycle(batch []*job) {
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
			j.reply(jobResult{err: errUnloaded})
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
	s.metrics.cycleStart(n)
	for _, sv := range order {
		s.runGroup(sv, groups[sv])
	}
	s.metrics.cycleEnd(time.Since(start))
}

// runGroup answers the jobs of one adapter. A panic in the model fails these
// jobs, not the server.
func (s *Server) runGroup(sv *served, jobs []*job) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("model worker: %v", r)
			s.logf("serve: %v", err)
			for _, j := range jobs {
				j.reply(jobResult{err: err})
			}
		}
	}()
	if err := s.activate(sv); err != nil {
		for _, j := range jobs {
			j.reply(jobResult{err: err})
		}
		return
	}
	if s.opt.Fuse {
		s.runFused(sv, jobs)
		return
	}
	for _, j := range jobs {
		s.metrics.forwardWindows(len(j.feats), sv.Name, 1)
		starts, ends, _, err := train.Logits(j.ctx, s.model, j.feats, s.opt.BatchSize, false)
		j.reply(jobResult{starts: starts, ends: ends, err: err})
	}
}

// runFused runs the windows of all jobs through one Logits call.
func (s *Server) runFused(sv *served, jobs []*job) {
	var feats []data.Feature
	for _, j := range jobs {
		feats = append(feats, j.feats...)
	}
	s.metrics.forwardWindows(len(feats), sv.Name, len(jobs))
	starts, ends, _, err := train.Logits(context.Background(), s.model, feats, s.opt.BatchSize, false)
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
func (s *Server) onWorker(fn func() error) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
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
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		return errShuttingDown
	}
	s.pending++
	s.queue <- j // never blocks: the channel has room for Queue queries and one control job
	s.qmu.Unlock()
	return <-done
}

var errShuttingDown = errors.New("the server is shutting down")

// detach takes the attached adapter, if any, off the model.
func (s *Server) detach() error {
	if s.active != nil && s.active.adapter != nil {
		if err := s.active.adapter.Detach(); err != nil {
			return fmt.Errorf("detaching adapter %s: %w", s.active.Name, err)
		}
	}
	s.active = nil
	return nil
}

// activate attaches sv's adapter to the model, detaching the one attached.
func (s *Server) activate(sv *served) error {
	if s.active == sv {
		return nil
	}
	if err := s.detach(); err != nil {
		return err
	}
	if sv.adapter != nil {
		if err := sv.adapter.Attach(); err != nil {
			return fmt.Errorf("attaching adapter %s: %w", sv.Name, err)
		}
	}
	s.active = sv
	s.metrics.adapterSwitch()
	return nil
}
