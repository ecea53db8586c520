package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/throttle"
)

// Server is the backup server's task API, as agent.Client implements it.
type Server interface {
	NextTask(ctx context.Context, wait time.Duration) (*taskproto.Spec, error)
	TaskProgress(ctx context.Context, p taskproto.Progress) error
	TaskResult(ctx context.Context, r taskproto.Result) error
}

// Options configure a Proxy.
type Options struct {
	Server Server
	Creds  *agent.Credentials // the proxy's certificate, for repository agents
	Slots  int                // concurrent tasks; at least 1
	// PollWait is how long one poll may wait for work; 0 means 15 s.
	PollWait time.Duration
	// ProgressInterval is how often running attempts report; 0 means 1 s.
	ProgressInterval time.Duration
	// Workers is the pipeline's parallelism per task; 0: its default.
	Workers int
	// StateDir holds the redo data of Instant VM Recovery sessions this
	// proxy serves (StateDir/instant); "" refuses them.
	StateDir string
	// RestoreRoots are the directories restores may write files beneath
	// (reached without symbolic links); RestoreDevices the block devices
	// they may write over. With neither, the proxy refuses every restore.
	RestoreRoots   []string
	RestoreDevices []string
	// Connections is the number of connections to each repository agent
	// chunk uploads are spread over; 0 means 2.
	Connections int
	// VSphere are this proxy's ways to read vSphere disks.
	VSphere VSphereOptions
	Logger  *slog.Logger
	Clock   clock.Clock // nil: the real clock
}

// Proxy runs tasks. Create it with New.
type Proxy struct {
	o     Options
	cert  tls.Certificate
	trust *pki.Trust
	log   *slog.Logger

	// clients are the opened repositories (one argon2id each), one per
	// repository, password and traffic rules: each rule set paces the
	// connections of its own client, all attempts with the same rules share
	// the rules' bandwidth.
	clients *mover.Pool
}

// New returns a proxy.
func New(o Options) (*Proxy, error) {
	if o.Slots < 1 {
		return nil, errors.New("proxy: at least one slot")
	}
	if o.PollWait <= 0 {
		o.PollWait = 15 * time.Second
	}
	if o.Connections <= 0 {
		o.Connections = 2
	}
	o.Clock = clock.Or(o.Clock)
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cert, err := o.Creds.Certificate()
	if err != nil {
		return nil, err
	}
	trust, err := o.Creds.Trust()
	if err != nil {
		return nil, err
	}
	return &Proxy{o: o, cert: cert, trust: trust, log: o.Logger, clients: mover.NewPool()}, nil
}

// Run runs the workers until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range p.o.Slots {
		wg.Add(1)
		go func() { defer wg.Done(); p.worker(ctx, i) }()
	}
	wg.Wait()
	p.clients.Close()
	return nil
}

// worker polls for attempts and runs them one at a time.
func (p *Proxy) worker(ctx context.Context, n int) {
	backoff := time.Second
	for ctx.Err() == nil {
		spec, err := p.o.Server.NextTask(ctx, p.o.PollWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("poll the server for tasks", "worker", n, "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 15*time.Second)
			continue
		}
		backoff = time.Second
		if spec == nil {
			continue
		}
		p.log.Info("task started", "task", spec.TaskID, "attempt", spec.Attempt, "kind", spec.Kind, "vm", spec.VM,
			"disk", spec.Disk, "repository", spec.Repository.Name)
		res := p.runAttempt(ctx, spec)
		if ctx.Err() != nil {
			return // shutting down: the server moves the task on when we are gone
		}
		p.report(ctx, res)
	}
}

// report sends the result, retrying while the server is unreachable.
func (p *Proxy) report(ctx context.Context, res taskproto.Result) {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := p.o.Server.TaskResult(ctx, res)
		switch {
		case err == nil:
			p.log.Info("task ended", "task", res.TaskID, "attempt", res.Attempt, "error", res.Error)
			return
		case errors.Is(err, taskproto.ErrStale), errors.Is(err, agent.ErrRefused):
			p.log.Warn("result dropped: the server no longer runs this attempt (it moved the task, or runs it again after a restart)",
				"task", res.TaskID, "attempt", res.Attempt, "err", err)
			return
		case attempt >= 20 || ctx.Err() != nil:
			p.log.Error("result not delivered", "task", res.TaskID, "err", err)
			return
		}
		sleep(ctx, wait)
		wait = min(2*wait, 10*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// repository returns a client of its own for the spec's repository: a fork
// of the one opened client per repository, password and traffic rules.
func (p *Proxy) repository(ctx context.Context, spec *taskproto.Spec) (*mover.Client, error) {
	rules := strings.Join(spec.Throttle, "\n")
	key := sha256.Sum256([]byte(spec.Repository.Name + "\x00" + spec.Repository.URL + "\x00" + spec.Password +
		"\x00" + rules))
	return p.clients.Fork(ctx, hex.EncodeToString(key[:]), func(ctx context.Context) (*mover.Client, error) {
		var wrap func(net.Conn) net.Conn
		if rules != "" {
			rs, err := throttle.ParseRules(rules, nil)
			if err != nil {
				return nil, fmt.Errorf("traffic rules: %w", err)
			}
			shaper := throttle.NewShaper(rs, nil)
			wrap = func(c net.Conn) net.Conn { return shaper.Conn(c) }
		}
		tc := p.trust.ClientTLSConfig(&p.cert, pki.RoleRepository, spec.Repository.Name)
		hc := mover.NewHTTPClientWrapped(tc, wrap)
		var uploads []*http.Client
		for range p.o.Connections - 1 {
			uploads = append(uploads, mover.NewHTTPClientWrapped(tc, wrap))
		}
		return mover.Dial(ctx, mover.ClientOptions{URL: spec.Repository.URL, Repo: spec.Repository.Name,
			Password: []byte(spec.Password), HTTP: hc, Uploads: uploads, Logger: p.log})
	})
}
