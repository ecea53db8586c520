package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a CPU profile of the whole run to the file
// HOLDFAST_CPUPROFILE names, for benchmarks (bench/libvirt.sh): unset, it
// does nothing. A profile that cannot start is a note on stderr, never a
// failed command. The returned func stops the profile and closes the file.
func startCPUProfile(getenv func(string) string, stderr io.Writer) func() {
	path := getenv("HOLDFAST_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "holdfast: cpu profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "holdfast: cpu profile: %v\n", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "holdfast: cpu profile: %v\n", err)
		}
	}
}
