package taskproto

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

// Kinds of task.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
	// KindMount serves a point's disks for Instant VM Recovery on the
	// proxy (the "mount server") until the session is stopped.
	KindMount = "mount"
)

// Spec is one attempt at a task, as the server hands it to a proxy. It
// carries the repository password: it travels only over mutual TLS to the
// proxy that runs the task and is never logged.
type Spec struct {
	TaskID    int64  `json:"task_id"`
	Attempt   int    `json:"attempt"`
	SessionID int64  `json:"session_id"`
	Kind      string `json:"kind"` // KindBackup or KindRestore
	VM        string `json:"vm"`
	Disk      int    `json:"disk"` // disk number within the VM / point

	// Source is the disk to read (backup): an image path, or an nbd:// URL;
	// or a whole QEMU VM, qemu:///PATH/qmp.sock, whose disks the proxy
	// snapshots and backs up in this one attempt (Disk is then 0).
	Source string `json:"source,omitempty"`
	// GuestAgent is the QEMU guest agent socket used to freeze the guest's
	// file systems around a qemu:// snapshot ("": none).
	GuestAgent string `json:"guest_agent,omitempty"`
	// Format is the image format of a file source (raw, qcow2, vmdk; ""
	// detects it from the content, never following references to other
	// files); FollowBacking lets a qcow2 source read its backing chain.
	Format        string `json:"format,omitempty"`
	FollowBacking bool   `json:"follow_backing,omitempty"`
	Transport     string `json:"transport"` // the transport the scheduler chose

	Repository Repository `json:"repository"`
	Password   string     `json:"password"`

	// MoverSession is the shared data mover session the server opened for
	// the VM's point (backup): the proxy attaches to it, uploads the disk's
	// chunks and index under PointID, and leaves the commit to the server.
	MoverSession string `json:"mover_session,omitempty"`
	PointID      string `json:"point_id,omitempty"`
	// Previous is the manifest of the VM's previous point (backup), or of
	// the point to restore (restore).
	Previous  json.RawMessage `json:"previous,omitempty"`
	ChunkSize int             `json:"chunk_size,omitempty"`

	// Target is where a restore writes the disk (a path on the proxy);
	// Force lets it replace an existing non-empty file or write over a
	// block device.
	Target string `json:"target,omitempty"`
	Force  bool   `json:"force,omitempty"`

	// ReadLimit paces source reads (bytes/s, 0: none); Throttle lists
	// traffic rules (internal/throttle grammar) for the link to the
	// repository.
	ReadLimit int64    `json:"read_limit,omitempty"`
	Throttle  []string `json:"throttle,omitempty"`

	// ExcludeFree and ExcludeSwap leave out what the guest does not need
	// (backup): free blocks of ext2/3/4 and xfs, swap partition bodies.
	ExcludeFree bool `json:"exclude_free,omitempty"`
	ExcludeSwap bool `json:"exclude_swap,omitempty"`
	// ExcludePaths are guest paths whose files' data is left out.
	ExcludePaths []string `json:"exclude_paths,omitempty"`

	// Mount says how to serve the point (Previous) for KindMount.
	Mount *Mount `json:"mount,omitempty"`

	// VSphere is how to log in to the vCenter or ESXi host of a vsphere://
	// source (backup): the server read the password from the source's
	// password file and sends it to this proxy alone, like Password.
	VSphere *VSphere `json:"vsphere,omitempty"`
	// LibvirtURI is the connection URI of the libvirt daemon of a
	// libvirt:///DOMAIN source (backup): that of the libvirt source the
	// domain was selected from ("": the local qemu:///system).
	LibvirtURI string `json:"libvirt_uri,omitempty"`
}

// VSphere is the login and trust of a vsphere:// source: the password of
// the source's user, and a pinned SHA-256 thumbprint, CA certificates
// (PEM) or none (Insecure) to verify the endpoint.
type VSphere struct {
	Password   string `json:"password"`
	Thumbprint string `json:"thumbprint,omitempty"`
	CAPEM      string `json:"ca_pem,omitempty"`
	Insecure   bool   `json:"insecure,omitempty"`
}

// ConnectOptions turns the login and trust into vsphere.ConnectOptions.
func (v *VSphere) ConnectOptions() (vsphere.ConnectOptions, error) {
	o := vsphere.ConnectOptions{Password: v.Password, Thumbprint: v.Thumbprint, Insecure: v.Insecure}
	if v.CAPEM != "" {
		o.RootCAs = x509.NewCertPool()
		if !o.RootCAs.AppendCertsFromPEM([]byte(v.CAPEM)) {
			return o, errors.New("vSphere CA: no PEM certificates")
		}
	}
	return o, nil
}

// Mount is how a mount server publishes a point.
type Mount struct {
	NBD      string   `json:"nbd,omitempty"`       // NBD listen address ("": none)
	NFS      bool     `json:"nfs,omitempty"`       // also serve NFS
	NFSBind  string   `json:"nfs_bind,omitempty"`  // NFS listen host
	NFSPorts [3]int   `json:"nfs_ports,omitempty"` // portmapper, MOUNT, NFS
	Allow    []string `json:"allow,omitempty"`     // client CIDRs
	// NBDClientCA is the CA certificate (PEM) of the session's client
	// certificate: the NBD exports take TLS only and require a client
	// certificate it issued. The server sets it; the certificate and its
	// key went to the requester alone.
	NBDClientCA string `json:"nbd_client_ca,omitempty"`
	// Publish mounts the point on the mount server instead (holdfast
	// publish): read-only loop devices and filesystems under MountDir
	// (the mount server's default when empty); no network exports.
	Publish  bool   `json:"publish,omitempty"`
	MountDir string `json:"mount_dir,omitempty"`
	// Scan publishes the point on the mount server in-process, scans its
	// guest filesystems with the engine, unpublishes it and records the
	// result on the point through the repository agent (a job's
	// scan_after, after the backup committed the point); the attempt
	// ends with Result.Scan.
	Scan *jobdef.ScanAfter `json:"scan,omitempty"`
}

// ScanResult is what a scan attempt (Mount.Scan) found.
type ScanResult struct {
	Engine        string `json:"engine"`
	EngineVersion string `json:"engine_version,omitempty"`
	Result        string `json:"result"` // repo.ScanClean, ScanInfected or ScanFailed (not scanned)
	Findings      int    `json:"findings"`
	// First is the first finding (guest path and signature, not escaped).
	First *repo.ScanFinding `json:"first,omitempty"`
	Error string            `json:"error,omitempty"` // why it was not scanned (escaped)
	// Recorded says the result was stored on the point in the repository.
	Recorded bool `json:"recorded"`
}

// Repository is where a task's data goes: a repository agent.
type Repository struct {
	Name string `json:"name"`
	URL  string `json:"url"` // https://host:port of the agent
}

// Validate checks a spec received from the server.
func (s *Spec) Validate() error {
	switch {
	case s.TaskID <= 0 || s.Attempt <= 0:
		return errors.New("task spec: missing task id or attempt")
	case s.Kind != KindBackup && s.Kind != KindRestore && s.Kind != KindMount:
		return fmt.Errorf("task spec: unknown kind %q", s.Kind)
	case s.Disk < 0:
		return fmt.Errorf("task spec: disk %d", s.Disk)
	case s.Repository.Name == "" || s.Repository.URL == "":
		return errors.New("task spec: no repository")
	case s.Kind == KindBackup && (s.Source == "" || s.MoverSession == "" || s.PointID == ""):
		return errors.New("task spec: backup without source, mover session or point")
	case s.Kind == KindRestore && (s.Target == "" || len(s.Previous) == 0):
		return errors.New("task spec: restore without target or point")
	case s.Kind == KindMount && (s.Mount == nil || len(s.Previous) == 0):
		return errors.New("task spec: mount without point or mount options")
	}
	return nil
}

// Counters are a task's byte counts so far.
type Counters struct {
	BytesTotal       int64 `json:"bytes_total"`       // disk size
	BytesDone        int64 `json:"bytes_done"`        // disk bytes processed (read, skipped or reused)
	BytesRead        int64 `json:"bytes_read"`        // read from the source
	BytesTransferred int64 `json:"bytes_transferred"` // sent to (or received from) the repository
	BytesWritten     int64 `json:"bytes_written"`     // new data stored (backup) or written (restore)
}

// Stages is where a task spent its time, summed over its workers: the
// bottleneck statistic.
type Stages struct {
	SourceNanos  int64 `json:"source_ns"`  // reading the source
	ProxyNanos   int64 `json:"proxy_ns"`   // hashing, compressing, encrypting on the proxy
	NetworkNanos int64 `json:"network_ns"` // moving data between proxy and repository
	TargetNanos  int64 `json:"target_ns"`  // the repository verifying and storing
}

// Progress is a running attempt's state, sent every second or so.
type Progress struct {
	TaskID  int64 `json:"task_id"`
	Attempt int   `json:"attempt"`
	Counters
	Stages
	// Info is what a mount attempt serves (its session record: export
	// URLs per disk), once it does.
	Info json.RawMessage `json:"info,omitempty"`
}

// Result ends an attempt.
type Result struct {
	TaskID  int64  `json:"task_id"`
	Attempt int    `json:"attempt"`
	Error   string `json:"error,omitempty"` // "": success
	Counters
	Stages
	Warnings []string `json:"warnings,omitempty"`
	// Disk is the repo.DiskManifest of the backed-up disk (backup success).
	Disk json.RawMessage `json:"disk,omitempty"`
	// Disks are the repo.DiskManifests of every disk of a qemu:// VM
	// (backup success), in disk order; Notes go into the point's manifest
	// (guest quiescing, transport choice).
	Disks []json.RawMessage `json:"disks,omitempty"`
	Notes map[string]string `json:"notes,omitempty"`
	// Config is the VM's configuration (a whole-VM source that reports
	// one), recorded in the point's manifest.
	Config   *repo.VMConfig `json:"config,omitempty"`
	Duration time.Duration  `json:"duration_ns"`
	// Scan is the outcome of a scan attempt (Mount.Scan).
	Scan *ScanResult `json:"scan,omitempty"`
}

// NextRequest is the body of a poll for work.
type NextRequest struct {
	// WaitSeconds is how long the server may hold the poll when no task is
	// ready (long polling); at most MaxWait.
	WaitSeconds int `json:"wait_seconds"`
}

// MaxWait bounds a long poll.
const MaxWait = 30 * time.Second

// RestoreRequest asks the server to write one disk of a point to a path on
// a proxy (POST /api/v1/restores).
type RestoreRequest struct {
	Point    string `json:"point"` // ID, unique ID prefix, "latest" or "VM:latest" (configdb.Store.ResolvePoint)
	Disk     int    `json:"disk"`
	Target   string `json:"target"`             // absolute path on the proxy
	Force    bool   `json:"force,omitempty"`    // replace an existing file / write over a block device
	Password string `json:"password,omitempty"` // "": the password of the job that made the point
}

// MountRequest asks the server to publish a point for Instant VM Recovery
// on a proxy (POST /api/v1/instant-recoveries).
type MountRequest struct {
	Point    string `json:"point"` // as RestoreRequest's
	Password string `json:"password,omitempty"`
	Mount
	// NFSInsecure acknowledges that the NFS export has no TLS and no
	// client authentication (any host in Allow can read and write the
	// disks); NFS is refused without it.
	NFSInsecure bool `json:"nfs_insecure,omitempty"`
}

// PublishRequest asks the server to publish a point on a mount server
// (POST /api/v1/publications): its filesystems mounted read-only there.
type PublishRequest struct {
	Point    string `json:"point"` // as RestoreRequest's
	Password string `json:"password,omitempty"`
	MountDir string `json:"mount_dir,omitempty"` // absolute, on the mount server ("": its default)
}

// Errors the server's task broker returns.
var (
	// ErrStale answers a report for an attempt the server no longer runs
	// (the proxy was declared lost meanwhile, or the server restarted);
	// HTTP 409. The proxy drops the attempt.
	ErrStale = errors.New("task attempt is no longer running (the proxy was declared lost, or the server restarted)")
	// ErrInvalid marks a malformed request; HTTP 400.
	ErrInvalid = errors.New("invalid request")
)
