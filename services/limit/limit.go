// Package limit bounds how often each of many callers (client ids) may
// act: a token bucket per key, in bounded memory.
package limit

import (
	"sync"
	"time"
)

// Limiter is a token bucket per key (a client id): each key may make
// Burst requests at once and Rate per second after that. It holds at
// most maxKeys buckets; when full, the buckets that refilled are dropped
// (they carry no debt), so memory stays bounded however many ids callers
// invent.
type Limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxKeys = 100_000

// New returns a Limiter; rate <= 0 turns it off.
func New(rate float64, burst int) *Limiter {
	return &Limiter{rate: rate, burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes a token for key; when there is none it reports how long
// until there is.
func (l *Limiter) Allow(key string) (ok bool, retry time.Duration) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// evict drops the buckets that are full again; callers hold l.mu.
func (l *Limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxKeys {
		clear(l.buckets) // everyone is in debt: forgive rather than grow
	}
}
