package publish

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"regexp"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/export/fuse"
	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/sessionid"
)

// Options say what to publish and where.
type Options struct {
	ID         string // "" → NewID()
	Store      repo.PointReader
	Point      *repo.Manifest
	MountDir   string // "" → filepath.Join(os.TempDir(), "holdfast.mount."+ID)
	StateDir   string // session records ("" → DefaultStateDir())
	CacheBytes int64  // chunk cache per disk (0: restorefs' default)
	Logger     *slog.Logger
	// System runs the tools (nil: Host{}).
	System System
	// Holder, if set, holds the point from forget, retention and gc while
	// it is published (the session ID is the holder): the repository, or
	// the repository agent's data mover client on a mount server.
	Holder instant.Holder
	// PID is the process recorded as serving the session (0: this one).
	PID   int
	Clock clock.Clock // stamps Session.Started (nil: the real clock)
}

// Filesystem is a partition, whole disk or logical volume of the point.
type Filesystem struct {
	Name       string `json:"name"`                // "disk0-p1", "disk0", or the LV name
	Disk       int    `json:"disk"`                // the disk it is on (an LV: of its first PV)
	Partition  int    `json:"partition,omitempty"` // 0: the whole disk
	LV         string `json:"lv,omitempty"`        // "vg/lv"
	Device     string `json:"device"`
	FSType     string `json:"fstype"` // blkid's TYPE; "" when not recognised
	Size       int64  `json:"size"`
	Mountpoint string `json:"mountpoint,omitempty"` // empty when not mounted (swap, unknown, LVM PV …)
	// Problem says why a recognised filesystem is not mounted.
	Problem string `json:"problem,omitempty"`
}

// Disk is one published disk: its FUSE file and loop device.
type Disk struct {
	Index int    `json:"index"`
	Size  int64  `json:"size"`
	File  string `json:"file"`
	Loop  string `json:"loop,omitempty"`
}

// Session is a published point: what the record holds.
type Session struct {
	ID          string       `json:"id"`
	VM          string       `json:"vm"`
	Point       string       `json:"point"`
	MountDir    string       `json:"mount_dir"`
	PID         int          `json:"pid"`
	PIDStart    uint64       `json:"pid_start,omitempty"` // the process's start, clock ticks after boot
	Started     time.Time    `json:"started"`
	Ready       bool         `json:"ready"` // everything is mounted
	Disks       []Disk       `json:"disks"`
	Filesystems []Filesystem `json:"filesystems"`
	// Problems are what could not be published (a damaged partition
	// table, a filesystem that did not mount, a skipped volume group).
	Problems []string `json:"problems,omitempty"`
	Steps    []Step   `json:"steps"`

	recs   Records
	sys    System
	log    *slog.Logger
	holder instant.Holder
	fuse   *fuse.Server
	disks  []*restorefs.Disk
	clk    clock.Clock // waits between tries on a busy device (nil: the real clock)
}

var idPattern = regexp.MustCompile(`^pub-[0-9a-f]{8}$`)

// NewID returns a fresh session ID: "pub-" and eight hex digits.
func NewID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "pub-" + hex.EncodeToString(b[:])
}

// ServerID is the ID of the server's publish session n: "pub-" and the
// session number in eight decimal digits, as instant.ServerID.
func ServerID(n int64) string { return sessionid.Format("pub-", n) }

// ParseServerID returns the session number a ServerID names; a bare
// session number is accepted too.
func ParseServerID(id string) (int64, bool) { return sessionid.Parse(id, "pub-", ValidID) }

// ValidID reports whether id looks like a session ID.
func ValidID(id string) bool { return idPattern.MatchString(id) }
