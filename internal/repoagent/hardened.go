package repoagent

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Hardening is what a repository agent run with --immutable DAYS
// enforces: through the data mover protocol always (repo.Immutable around
// the repository's storage), and with the file system's immutable
// attribute where it can.
type Hardening struct {
	Days int
	// Attributes reports whether stored files get the immutable
	// attribute (chattr +i); AttrError says why not.
	Attributes bool
	AttrError  string
}

// prober is storage.Local's ProbeImmutable.
type prober interface{ ProbeImmutable() error }

// Harden returns a view of r on hardened storage that refuses deleting or
// overwriting anything younger than days, and what it enforces. It probes
// whether the repository's file system and the process allow the
// immutable attribute; if not, it says so once in log and enforces through
// the protocol only.
func Harden(r *repo.Repository, days int, clk clock.Clock, log *slog.Logger) (*repo.Repository, Hardening) {
	h := Hardening{Days: days}
	be := r.Backend()
	if p, ok := be.(prober); !ok {
		h.AttrError = "object storage has no file attributes (use Object Lock: repo init --object-lock)"
	} else if err := p.ProbeImmutable(); err != nil {
		h.AttrError = err.Error()
	} else {
		h.Attributes = true
	}
	var once sync.Once
	im := repo.NewImmutable(be, repo.ImmutableOptions{
		Window:     time.Duration(days) * 24 * time.Hour,
		Attributes: h.Attributes,
		Reason:     fmt.Sprintf("the repository agent keeps everything for %d days (--immutable %d)", days, days),
		Clock:      clk,
		AttrError: func(name string, err error) {
			once.Do(func() {
				log.Warn("hardened repository: immutable attribute not set (further failures not logged)", "file", name, "err", err)
			})
		},
	})
	if h.Attributes {
		log.Info("hardened repository: nothing younger than the window is deleted or overwritten; stored files get the immutable attribute",
			"days", days, "location", be.Location())
	} else {
		log.Warn("hardened repository: enforced through the data mover protocol only, stored files do not get the immutable attribute",
			"days", days, "location", be.Location(), "reason", h.AttrError)
	}
	return r.WithBackend(im), h
}
