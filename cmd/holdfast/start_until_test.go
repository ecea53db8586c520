package main

import (
	"os/exec"
	"testing"
	"time"
)

// startUntil starts cmd and waits until ready reports true, polling; the
// test fails if cmd ends first (or nothing happens for ten minutes). It
// returns the channel that receives cmd.Wait's result. Tests that must act
// while a command is at a given stage wait for it this way, never for a
// fixed time, so they hold on a loaded machine.
func startUntil(t *testing.T, cmd *exec.Cmd, what string, ready func() bool) <-chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Minute)
	for !ready() {
		select {
		case err := <-done:
			t.Fatalf("%s ended before %s: %v", cmd.Args, what, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("%s: no %s after ten minutes", cmd.Args, what)
		}
	}
	return done
}
