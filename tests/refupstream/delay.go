// Slow answers and concurrency counting, for load tests: /_control/delay
// holds every answer of one kind for a while, and the counters report how
// many requests of that kind were in progress at once, at most.

package main

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// slow is the delay state: per kind ("zip", "mod", "info"), how long to hold
// an answer, and how many requests are (and were at most) in progress.
type slow struct {
	mu     sync.Mutex
	delay  map[string]time.Duration
	now    map[string]int
	maxNow map[string]int
}

func newSlow() *slow {
	return &slow{delay: map[string]time.Duration{}, now: map[string]int{}, maxNow: map[string]int{}}
}

// enter counts a request of kind in progress and returns the function that
// ends it; callers defer it.
func (s *slow) enter(kind string) func() {
	s.mu.Lock()
	s.now[kind]++
	if s.now[kind] > s.maxNow[kind] {
		s.maxNow[kind] = s.now[kind]
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.now[kind]--
		s.mu.Unlock()
	}
}

// wait holds a request of kind for its configured delay; false if the
// client went away meanwhile (the request is then over).
func (s *slow) wait(r *http.Request, kind string) bool {
	s.mu.Lock()
	d := s.delay[kind]
	s.mu.Unlock()
	if d == 0 {
		return true
	}
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// counters adds "now:<kind>" (in progress now) and "max:<kind>" (at
// most, since the last reset) to c.
func (s *slow) counters(c map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.now {
		c["now:"+k] = uint64(v)
	}
	for k, v := range s.maxNow {
		c["max:"+k] = uint64(v)
	}
}

func (s *slow) resetMax() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxNow = map[string]int{}
	for k, v := range s.now {
		s.maxNow[k] = v
	}
}

// control handles /_control/delay?what=zip&ms=N (ms=0 removes the delay);
// what=sumdb holds every checksum-database answer (lookups, tiles, latest);
// what=all is every proxy and sumdb request (what -delay sets), added to the
// delay of the request's kind.
func (s *slow) control(w http.ResponseWriter, what, ms string) bool {
	if what != "zip" && what != "mod" && what != "info" && what != "sumdb" && what != "all" {
		http.Error(w, "what must be zip, mod, info, sumdb or all", http.StatusBadRequest)
		return false
	}
	var n int
	if _, err := fmt.Sscan(ms, &n); err != nil || n < 0 {
		http.Error(w, "ms must be a number of milliseconds", http.StatusBadRequest)
		return false
	}
	s.mu.Lock()
	s.delay[what] = time.Duration(n) * time.Millisecond
	s.mu.Unlock()
	return true
}
