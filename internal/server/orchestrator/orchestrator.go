package orchestrator

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// Options configure an Orchestrator.
type Options struct {
	Store *configdb.Store
	CA    *pki.CA
	// Cert is the server's certificate; it doubles as the client
	// certificate the server shows repository agents.
	Cert   tls.Certificate
	Logger *slog.Logger
	Clock  clock.Clock // nil: the real clock
	// AgentTimeout is how long a proxy may stay silent before its tasks
	// move to another proxy; 0 means 30 s.
	AgentTimeout time.Duration
	// SyncInterval is how often the agents table and the schedules are
	// read; 0 means 1 s.
	SyncInterval time.Duration
	// Dispatchers is the number of goroutines handing out tasks (each may
	// wait on a repository agent while preparing a VM); 0 means 4.
	Dispatchers int
}

// Orchestrator executes sessions. Create it with New and run it with Run.
type Orchestrator struct {
	o     Options
	store *configdb.Store
	sched *scheduler.Scheduler
	log   *slog.Logger
	now   func() time.Time
	mover *moverPool

	jobWrite sync.Mutex // serialises the server's own writes to job definitions
	mu       sync.Mutex
	sessions map[int64]*runSession
	tasks    map[int64]*taskRun
	vms      map[scheduler.VMKey]*vmRun
	mail     map[string][]mailItem // proxy → attempts waiting for pickup
	wake     map[string]chan struct{}
	online   map[string]bool // proxies the scheduler sees online
	nextFire map[string]time.Time
	ready    chan struct{} // closed when Run has recovered the database
}

// New returns an orchestrator over the store.
func New(o Options) *Orchestrator {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.Or(o.Clock)
	if o.AgentTimeout <= 0 {
		o.AgentTimeout = 30 * time.Second
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	if o.Dispatchers <= 0 {
		o.Dispatchers = 4
	}
	or := &Orchestrator{o: o, store: o.Store, log: o.Logger, now: o.Clock.Now,
		sched:    scheduler.New(o.Clock),
		sessions: map[int64]*runSession{}, tasks: map[int64]*taskRun{}, vms: map[scheduler.VMKey]*vmRun{},
		mail: map[string][]mailItem{}, wake: map[string]chan struct{}{}, online: map[string]bool{},
		nextFire: map[string]time.Time{}, ready: make(chan struct{})}
	or.mover = newMoverPool(o.CA, o.Cert, o.Logger)
	or.sched.SetVMHooks(scheduler.VMHooks{Prepare: or.prepareVM, Release: or.releaseVM})
	return or
}

// Run recovers sessions a previous server process left running (backup
// sessions run again, others fail: recoverSessions), then
// dispatches tasks, watches agents and fires schedules until ctx ends.
func (or *Orchestrator) Run(ctx context.Context) error {
	if err := or.recoverSessions(ctx); err != nil {
		return err
	}
	close(or.ready)
	var wg sync.WaitGroup
	for range or.o.Dispatchers {
		wg.Add(1)
		go func() { defer wg.Done(); or.dispatchLoop(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); or.syncLoop(ctx) }()
	wg.Wait()
	or.mover.close()
	return nil
}

// syncLoop reads agents and schedules every SyncInterval.
func (or *Orchestrator) syncLoop(ctx context.Context) {
	t := time.NewTicker(or.o.SyncInterval)
	defer t.Stop()
	for {
		if err := or.syncAgents(ctx); err != nil && ctx.Err() == nil {
			or.log.Warn("read agents", "err", err)
		}
		if err := or.fireSchedules(ctx); err != nil && ctx.Err() == nil {
			or.log.Warn("schedules", "err", err)
		}
		or.noteWaiting(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Queued reports the scheduler's queue (for the API and tests).
func (or *Orchestrator) Queued() []scheduler.Waiting { return or.sched.Queued() }

// taskKey names a task in the scheduler.
func taskKey(id int64) string { return itoa(id) }

func sessionKey(id int64) string { return "s" + itoa(id) }
