package main

import "runtime/debug"

// leanHeap makes the collector keep the heap within half again of the live
// data, not twice it, for the commands whose memory grows with the
// repository (gc, verify): their live heap is the set of referenced
// chunks and one index at a time, and the default GOGC=100 lets the
// process grow to twice that (measured at 1 M chunks: 182 → 140 MiB peak,
// the same CPU time). A GOGC the user set wins.
func (a *app) leanHeap() {
	if a.getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}
