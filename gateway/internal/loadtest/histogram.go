package loadtest

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// Histogram layout: values below 2^(subBits+1) have one bucket each (exact);
// above, each power of two is split into 2^subBits linear sub-buckets, so a
// bucket's width is at most 1/64 of its value (HdrHistogram with about two
// significant digits). Values above maxValue are clamped into the last bucket
// (the exact maximum is tracked separately).
const (
	subBits     = 6
	subCount    = 1 << subBits
	maxValueLog = 36 // values up to 2^36 (≈ 19 hours in microseconds)
	numBuckets  = (maxValueLog-subBits)*subCount + 2*subCount
	maxValue    = uint64(1)<<maxValueLog - 1
)

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v > maxValue {
		v = maxValue
	}
	if v < 2*subCount {
		return int(v)
	}
	e := bits.Len64(v) - (subBits + 1)
	return e*subCount + int(v>>uint(e))
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	e := i/subCount - 1
	m := uint64(i - e*subCount) // in [subCount, 2*subCount)
	return (m+1)<<uint(e) - 1
}

// histShard is one independently updated part of a Histogram, padded so two
// shards never share a cache line at their hot counters.
type histShard struct {
	count  atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
	_      [40]byte
	bucket [numBuckets]atomic.Uint64
}

// Histogram is a lock-free, sharded, log-linear histogram of non-negative
// integer values (the bench records latencies in microseconds). Values below
// 128 are exact; larger values are kept with a relative error below 1/64.
//
// Record may be called concurrently from any goroutine; callers spread over
// shards (e.g. by client index) to avoid contention. Snapshot may run
// concurrently with Record and sees a consistent-enough view for progress
// lines.
type Histogram struct {
	shards []histShard
}

// NewHistogram returns an empty histogram with n shards (at least 1).
func NewHistogram(n int) *Histogram {
	if n < 1 {
		n = 1
	}
	return &Histogram{shards: make([]histShard, n)}
}

// Record adds value v to shard (taken modulo the shard count).
func (h *Histogram) Record(shard int, v uint64) {
	s := &h.shards[uint(shard)%uint(len(h.shards))]
	s.bucket[bucketOf(v)].Add(1)
	s.count.Add(1)
	s.sum.Add(v)
	for {
		m := s.max.Load()
		if v <= m || s.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Snapshot merges all shards into an immutable summary.
func (h *Histogram) Snapshot() *HistSnapshot {
	hs := &HistSnapshot{counts: make([]uint64, numBuckets)}
	for i := range h.shards {
		s := &h.shards[i]
		for b := range s.bucket {
			if c := s.bucket[b].Load(); c != 0 {
				hs.counts[b] += c
			}
		}
		hs.Count += s.count.Load()
		hs.Sum += s.sum.Load()
		if m := s.max.Load(); m > hs.Max {
			hs.Max = m
		}
	}
	return hs
}

// HistSnapshot is a merged copy of a Histogram's counters.
type HistSnapshot struct {
	counts []uint64
	// Count is the number of recorded values.
	Count uint64
	// Sum is the sum of recorded values.
	Sum uint64
	// Max is the exact largest recorded value.
	Max uint64
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1): the smallest
// bucket value such that at least ceil(q·Count) values are at or below it,
// reported as the bucket's highest value and never above Max. It returns 0
// for an empty snapshot.
func (s *HistSnapshot) Quantile(q float64) uint64 {
	var total uint64
	for _, c := range s.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	if q <= 0 {
		q = math.SmallestNonzeroFloat64
	}
	if q > 1 {
		q = 1
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			if v > s.Max {
				v = s.Max
			}
			return v
		}
	}
	return s.Max
}

// Mean returns the arithmetic mean of the recorded values (0 when empty).
func (s *HistSnapshot) Mean() float64 {
	if s.Count == 0 {
		return 0
	}
	return float64(s.Sum) / float64(s.Count)
}
