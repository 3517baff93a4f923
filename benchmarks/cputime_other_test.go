//go:build !unix

package benchmarks_test

func cpuNanos() int64 { return -1 }
