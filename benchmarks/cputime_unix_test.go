//go:build unix

package benchmarks_test

import "syscall"

// cpuNanos returns the CPU time the process has used, user and system, in
// all its threads.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
