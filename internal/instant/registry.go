package instant

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/atomicfile"
	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Record describes a recovery session; the serving process writes it into
// the registry when its exports answer and removes it when it stops.
type Record struct {
	ID      string    `json:"id"`
	Point   string    `json:"point"`
	VM      string    `json:"vm"`
	Repo    string    `json:"repository"`
	RedoDir string    `json:"redo_dir"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	NBDAddr string    `json:"nbd_addr,omitempty"`
	NFSPath string    `json:"nfs_export,omitempty"`
	// VMX is the .vmx file ESXi registers the VM from, in the NFS export
	// ("NAME/NAME.vmx").
	VMX   string     `json:"vmx,omitempty"`
	Disks []DiskInfo `json:"disks"`
	QEMU  int        `json:"qemu_pid,omitempty"`
	// QEMUStart is when the VM's process started (clock ticks after boot,
	// /proc/PID/stat), so a later process with the same PID is not taken
	// for it.
	QEMUStart uint64    `json:"qemu_start,omitempty"`
	LogFile   string    `json:"log,omitempty"`
	Stopped   time.Time `json:"stopped,omitempty"` // zero while serving
	// Migrated: the session's VM was moved onto production storage with a
	// live mirror and keeps running when the session stops.
	Migrated bool `json:"migrated,omitempty"`
	// Discarded is when the redo data was deleted while the session's VM
	// ran on (Discard): its socket and logs stayed, and so did the record.
	Discarded time.Time `json:"discarded,omitzero"`
	// ESXi is what the session set up on an ESXi host (package esxi):
	// recorded before each step, so a later stop undoes what a killed
	// start left.
	ESXi *ESXiRecord `json:"esxi,omitempty"`
	// Libvirt is the domain the session defined in libvirt on its
	// exports (LibvirtOptions).
	Libvirt *LibvirtRecord `json:"libvirt,omitempty"`
}

// ESXiRecord is a session's NFS datastore and VM on an ESXi host.
type ESXiRecord struct {
	// Locator is vsphere://USER@HOST/DC/host/… where the VM went (no
	// password).
	Locator string `json:"locator"`
	// Host is the ESXi host's managed object ID (HostSystem).
	Host string `json:"host"`
	// Datastore is the NAS datastore's name; DatastoreRef its managed
	// object ID once created.
	Datastore    string `json:"datastore"`
	DatastoreRef string `json:"datastore_ref,omitempty"`
	RemoteHost   string `json:"remote_host"`
	// VMName is the registered VM's name, VMPath its .vmx ("[ds] x.vmx"),
	// VMRef its managed object ID once registered.
	VMName string `json:"vm_name,omitempty"`
	VMPath string `json:"vm_path,omitempty"`
	VMRef  string `json:"vm_ref,omitempty"`
	// MigratedTo is the production datastore the VM was relocated to: it
	// is no longer the session's.
	MigratedTo string `json:"migrated_to,omitempty"`
	// Removed: the VM was unregistered (or migrated) and the datastore
	// removed.
	Removed bool `json:"removed,omitempty"`
}

// State is "serving", "stopped", "lost" (the process died without
// recording its stop), "vm-running" (the redo data was discarded; the VM
// runs on with its socket and logs in the redo directory) or "vm-ended"
// (that VM ended since: Discard removes the rest).
func (r Record) State() string {
	switch {
	case !r.Discarded.IsZero() && r.VMRunning():
		return "vm-running"
	case !r.Discarded.IsZero():
		return "vm-ended"
	case !r.Stopped.IsZero():
		return "stopped"
	case Alive(r.PID):
		return "serving"
	}
	return "lost"
}

// DiskInfo is one served disk.
type DiskInfo struct {
	Index  int    `json:"index"`
	Size   int64  `json:"size"`
	NBDURL string `json:"nbd_url,omitempty"`
	NFSURL string `json:"nfs_url,omitempty"`
	Redo   string `json:"redo"` // the overlay directory
}

// Registry is a directory of session records (<id>.json): the sessions of
// this host, which Start, Stop, Discard and MigrateSession manage. Clock
// stamps and times them (nil: the real clock).
type Registry struct {
	Dir   string
	Clock clock.Clock
}

func (r Registry) clk() clock.Clock { return clock.Or(r.Clock) }

var idPattern = regexp.MustCompile(`^ir-[0-9a-f]{8,16}$`)

// NewID returns a fresh session ID.
func NewID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "ir-" + hex.EncodeToString(b[:])
}

// ValidID reports whether id looks like a session ID.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func (r Registry) path(id string) string { return filepath.Join(r.Dir, id+".json") }

// Save writes a record atomically.
func (r Registry) Save(rec Record) error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(r.path(rec.ID), b, 0o600)
}

// Update changes session id's record with fn and saves it.
func (r Registry) Update(id string, fn func(*Record)) (Record, error) {
	rec, err := r.Load(id)
	if err != nil {
		return rec, err
	}
	fn(&rec)
	return rec, r.Save(rec)
}

// ErrNoSession means the registry has no such session.
var ErrNoSession = errors.New("no such instant recovery session")

// Load reads a record.
func (r Registry) Load(id string) (Record, error) {
	var rec Record
	if !ValidID(id) {
		return rec, fmt.Errorf("%q: %w (IDs look like ir-1a2b3c4d)", id, ErrNoSession)
	}
	b, err := os.ReadFile(r.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("%s: %w", id, ErrNoSession)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("session record %s: %w", id, err)
	}
	return rec, nil
}

// Remove deletes a record.
func (r Registry) Remove(id string) error {
	err := os.Remove(r.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// List returns the recorded sessions, oldest first.
func (r Registry) List() ([]Record, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !ValidID(id) {
			continue
		}
		rec, err := r.Load(id)
		if err != nil {
			continue
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// VMRunning reports whether the session's VM process runs: its PID
// exists and, when its start time was recorded, started then.
func (r Record) VMRunning() bool {
	if !Alive(r.QEMU) {
		return false
	}
	if r.QEMUStart == 0 {
		return true
	}
	st, _, err := procStat(r.QEMU)
	return err != nil || st == r.QEMUStart // unreadable: assume it is the VM
}

// ProcStart returns when process pid started, in clock ticks after boot.
func ProcStart(pid int) (uint64, error) {
	st, _, err := procStat(pid)
	return st, err
}

// procStat returns when process pid started, in clock ticks after boot,
// and its state letter (fields 22 and 3 of /proc/PID/stat).
func procStat(pid int) (start uint64, state string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	// The command name (field 2) is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0], err
}

// Alive reports whether a process exists (and has not ended: a zombie
// waiting for its parent does not count).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	_, state, serr := procStat(pid)
	return serr != nil || state != "Z"
}
