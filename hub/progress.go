package hub

import (
	"fmt"
	"io"
	"time"
)

const (
	progressMinSize  = 1 << 20
	progressInterval = 250 * time.Millisecond
)

// progress prints "\rname: 42% 12.3/29.0 MB 5.1 MB/s" at most every
// progressInterval, and a final line when the download ends.
type progress struct {
	w     io.Writer
	name  string
	total int64 // -1 when unknown
	done  int64
	start time.Time
	last  time.Time
	now   func() time.Time
}

func newProgress(w io.Writer, name string, total int64) *progress {
	return newProgressAt(w, name, total, time.Now)
}

func newProgressAt(w io.Writer, name string, total int64, now func() time.Time) *progress {
	t := now()
	return &progress{w: w, name: name, total: total, start: t, last: t, now: now}
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if t := p.now(); t.Sub(p.last) >= progressInterval {
		p.last = t
		p.print("")
	}
	return len(b), nil
}

// finish prints the last state and ends the line.
func (p *progress) finish(ok bool) {
	end := " done\n"
	if !ok {
		end = " failed\n"
	}
	p.print(end)
}

func (p *progress) print(end string) {
	const mb = 1e6
	secs := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.done) / mb / secs
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s: %3d%% %.1f/%.1f MB %.1f MB/s%s", p.name, p.done*100/p.total,
			float64(p.done)/mb, float64(p.total)/mb, rate, end)
		return
	}
	fmt.Fprintf(p.w, "\r%s: %.1f MB %.1f MB/s%s", p.name, float64(p.done)/mb, rate, end)
}
