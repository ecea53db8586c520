package server

import (
	"sync/atomic"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// observers tells each of several observers of ended sessions and tasks.
type observers []configdb.Observer

func (os observers) SessionEnded(s configdb.Session) {
	for _, o := range os {
		o.SessionEnded(s)
	}
}

func (os observers) TaskEnded(t configdb.Task) {
	for _, o := range os {
		o.TaskEnded(t)
	}
}

// wakeObserver forwards to an observer set after the store opened (the
// notifier, which needs the store); until then it drops the reports, which
// lose nothing: the notifier reads ended sessions from the database.
type wakeObserver struct {
	o atomic.Pointer[configdb.Observer]
}

func (w *wakeObserver) set(o configdb.Observer) { w.o.Store(&o) }

func (w *wakeObserver) SessionEnded(s configdb.Session) {
	if o := w.o.Load(); o != nil {
		(*o).SessionEnded(s)
	}
}

func (w *wakeObserver) TaskEnded(t configdb.Task) {
	if o := w.o.Load(); o != nil {
		(*o).TaskEnded(t)
	}
}
