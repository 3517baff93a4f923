package bizcircle

import "time"

// within reports whether the Unix time sec is within tol of now, exactly:
// sec*1e9 in [now-tol, now+tol] nanoseconds, with no overflow for any sec.
func within(sec int64, now time.Time, tol time.Duration) bool {
	n := now.UnixNano()
	lo, hi := n-int64(tol), n+int64(tol)
	if lo > n { // overflowed
		lo = -1 << 63
	}
	if hi < n {
		hi = 1<<63 - 1
	}
	return sec >= ceilDiv(lo, 1e9) && sec <= floorDiv(hi, 1e9)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}
