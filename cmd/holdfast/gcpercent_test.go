package main

import (
	"runtime/debug"
	"testing"
)

func TestLeanHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, c := range []struct {
		gogc string
		want int
	}{{"", 50}, {"200", 100}} {
		debug.SetGCPercent(100)
		a := &app{getenv: func(k string) string {
			if k == "GOGC" {
				return c.gogc
			}
			return ""
		}}
		a.leanHeap()
		if got := debug.SetGCPercent(100); got != c.want {
			t.Errorf("GOGC=%q: collector at %d %%, want %d", c.gogc, got, c.want)
		}
	}
}
