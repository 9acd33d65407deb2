package peft

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/loraqa/loraqa/bert"
)

// ErrNotMixable is Mix's refusal of an adapter that cannot share a forward
// with others: a merged one, or DoRA (whose update is not a sum over rows).
var ErrNotMixable = errors.New("adapter cannot run in a mixed batch")

// Mixture runs the rows of one batch through different adapters of one base
// model in a single forward, as a server with many adapters wants: each
// targeted module runs the base linear once over the whole batch and adds
// to each row the LoRA update of that row's adapter (its rows gathered, the
// update scattered back); each module to save (qa_outputs) runs per adapter
// on its rows. Rows routed to no adapter get the base model.
//
// Mix installs it in the model, whose adapters must all be detached; Route
// says before each forward which adapter each row uses; Remove puts the
// model back as it was.
type Mixture struct {
	model *bert.Model
	slots []*mixSlot
	dev   gotch.Device
}

// mixSlot is one module slot of the model during a mixed forward.
type mixSlot struct {
	name   string
	prev   bert.Module    // what the slot held: the base layer
	layers []*Linear      // by adapter; nil where the adapter leaves the module alone
	saved  []*bert.Linear // by adapter: its copy of a module to save, or nil
	groups []rowGroup     // set by Route
}

// rowGroup are the rows of a batch that one adapter answers.
type rowGroup struct {
	adapter int
	idx     *ts.Tensor // int64 row indices on the model's device; nil: every row
}

// Mix installs a Mixture of adapters (all injected into m and detached) in m.
func Mix(m *bert.Model, adapters []*Adapter) (*Mixture, error) {
	mods := m.Modules()
	byName := map[string]*mixSlot{}
	slot := func(name string) (*mixSlot, error) {
		if s := byName[name]; s != nil {
			return s, nil
		}
		p := mods[name]
		if p == nil {
			return nil, fmt.Errorf("module %s is not in the model", name)
		}
		if _, ok := (*p).(*bert.Linear); !ok {
			return nil, fmt.Errorf("module %s holds an adapter: detach it first", name)
		}
		s := &mixSlot{name: name, prev: *p, layers: make([]*Linear, len(adapters)), saved: make([]*bert.Linear, len(adapters))}
		byName[name] = s
		return s, nil
	}
	for i, a := range adapters {
		if len(a.biases) > 0 {
			return nil, fmt.Errorf("%w: it trains the base's biases", ErrNotMixable)
		}
		for name, l := range a.Layers {
			switch {
			case l.Merged:
				return nil, fmt.Errorf("%w: module %s is merged into the base weights", ErrNotMixable, name)
			case l.Magnitude != nil:
				return nil, fmt.Errorf("%w: module %s is DoRA", ErrNotMixable, name)
			}
			s, err := slot(name)
			if err != nil {
				return nil, err
			}
			if s.prev != bert.Module(l.Base) {
				return nil, fmt.Errorf("module %s: the adapter wraps another base layer", name)
			}
			s.layers[i] = l
		}
		for name, sv := range a.Saved {
			s, err := slot(name)
			if err != nil {
				return nil, err
			}
			s.saved[i] = sv
		}
	}
	mx := &Mixture{model: m, dev: m.Device}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		s := byName[name]
		mx.slots = append(mx.slots, s)
		*mods[name] = s
	}
	return mx, nil
}

// Route sets which adapter each row of the next forward's batch uses: rows[i]
// indexes the adapters given to Mix, or is -1 for the base model alone.
func (mx *Mixture) Route(rows []int) {
	mx.freeGroups()
	byAdapter := map[int][]int64{}
	var order []int
	for r, a := range rows {
		if a < 0 {
			continue
		}
		if byAdapter[a] == nil {
			order = append(order, a)
		}
		byAdapter[a] = append(byAdapter[a], int64(r))
	}
	groups := make([]rowGroup, 0, len(order))
	for _, a := range order {
		g := rowGroup{adapter: a}
		if len(byAdapter[a]) < len(rows) { // all rows: no gathering
			g.idx = ts.MustOfSlice(byAdapter[a]).MustTo(mx.dev, true)
		}
		groups = append(groups, g)
	}
	for _, s := range mx.slots {
		s.groups = groups
	}
}

// freeGroups frees the row indices of the last Route.
func (mx *Mixture) freeGroups() {
	if len(mx.slots) == 0 {
		return
	}
	for _, g := range mx.slots[0].groups {
		if g.idx != nil {
			g.idx.MustDrop()
		}
	}
	for _, s := range mx.slots {
		s.groups = nil
	}
}

// Remove puts every slot back as Mix found it and frees the row indices.
func (mx *Mixture) Remove() {
	mx.freeGroups()
	mods := mx.model.Modules()
	for _, s := range mx.slots {
		*mods[s.name] = s.prev
	}
	mx.slots = nil
}

// Forward runs the base layer over the whole batch, then adds each group's
// LoRA update to its rows, or replaces its rows by its module to save.
func (s *mixSlot) Forward(x *ts.Tensor, train bool) *ts.Tensor {
	out := s.prev.Forward(x, train)
	for _, g := range s.groups {
		l, sv := s.layers[g.adapter], s.saved[g.adapter]
		if l == nil && sv == nil {
			continue
		}
		xg := x
		if g.idx != nil {
			xg = x.MustIndexSelect(0, g.idx, false)
		}
		var y *ts.Tensor
		if l != nil {
			y = l.update(xg)
		} else {
			y = sv.Forward(xg, train)
		}
		if xg != x {
			xg.MustDrop()
		}
		switch {
		case g.idx == nil && l != nil:
			out.MustAdd_(y)
		case g.idx == nil: // every row is this adapter's: its module's output is the output
			out.MustDrop()
			out = y
			continue
		case l != nil:
			out.MustIndexAdd_(0, g.idx, y)
		default:
			out.MustIndexCopy_(0, g.idx, y)
		}
		y.MustDrop()
	}
	return out
}
