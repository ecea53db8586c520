package orchestrator

import (
	"encoding/json"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/libvirtsrc"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// runSession is a session being executed.
type runSession struct {
	id        int64
	job       string // "" for ad-hoc sessions (restore)
	kind      string // taskproto.KindBackup or KindRestore
	def       jobdef.Definition
	password  string
	guestKey  []byte // guest processing SSH key
	repo      string // repository agent name
	started   time.Time
	tasks     []*taskRun
	vms       []*vmRun
	pending   int // tasks not yet ended
	cancelled bool
	mount     *taskproto.Mount // KindMount: how to serve
	mountInfo json.RawMessage  // what the mount attempt serves
	stop      func()           // maintenance: cancels the agent's work
	warnings  []string         // session-level warnings (a selection that picked nothing)
}

// taskRun is one task of a session.
type taskRun struct {
	row     configdb.Task
	sess    *runSession
	vm      *vmRun
	disk    int
	wholeVM bool // a qemu:// VM: one attempt snapshots and backs up all its disks
	source  string
	spec    source.Spec   // source, parsed
	target  string        // restore
	force   bool          // restore: replace an existing target
	taken   chan struct{} // restore: closed when a proxy takes the task or it ends
	assign  *scheduler.Assignment
	attempt int // base + the scheduler's attempt number
	base    int // attempts of earlier runs (job retries)
	last    taskproto.Progress
	result  *taskproto.Result
	ended   bool
	// scan: the scan of the VM's committed point (scan_after), a mount
	// task with Mount.Scan; scanPoint is the point's manifest (JSON).
	scan      bool
	scanPoint json.RawMessage
}

// vmRun is one VM of a session: its shared mover session and point.
type vmRun struct {
	name      string
	def       jobdef.VM
	sess      *runSession
	key       scheduler.VMKey
	owner     *ownerSession // backup: the server's side of the shared mover session
	pointID   string
	previous  json.RawMessage // backup: previous manifest; restore: the point's
	started   time.Time
	disks     []jsonRaw         // per disk: the repo.DiskManifest a task reported
	failed    []string          // reasons
	point     *repo.Manifest    // committed point
	warnings  []string          // VM-level warnings (retention, guest processing)
	forgotten []string          // points retention removed
	retries   int               // re-runs done (job retries)
	history   []string          // errors of earlier runs
	guest     []GuestResult     // guest scripts of the current run
	notes     map[string]string // manifest notes the proxy reported (qemu:// VMs)
	scan      *ScanSummary      // the scan of the committed point (scan_after)
	config    *repo.VMConfig    // the VM's configuration the proxy reported (whole-VM sources)
	vsphere   *taskproto.VSphere
	libvirt   *libvirtsrc.Definition // the libvirt source the VM was selected from
	done      bool
}
type jsonRaw = json.RawMessage
