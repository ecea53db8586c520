package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/sdnotify"
)

// serviceReady returns the function a long-running command calls once it
// serves: it tells systemd READY=1 (Type=notify units; nothing without
// $NOTIFY_SOCKET) and, once ctx ends, STOPPING=1. A failed notification is
// logged, never fatal.
func (a *app) serviceReady(ctx context.Context, log *slog.Logger) func() {
	var once sync.Once
	send := func(state string) {
		if _, err := sdnotify.Notify(a.getenv, state); err != nil {
			log.Warn("notify systemd", "state", state, "err", err)
		}
	}
	return func() {
		once.Do(func() {
			send(sdnotify.Ready)
			context.AfterFunc(ctx, func() { send(sdnotify.Stopping) })
		})
	}
}
