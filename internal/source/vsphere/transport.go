package vsphere

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// SnapshotDisk is one disk of a VM as a snapshot froze it: what a
// transport needs to read it.
type SnapshotDisk struct {
	// Index is the disk's number in the restore point.
	Index int
	// Key is the virtual device key; Controller, Bus and Unit place it.
	Key        int32
	Controller string
	Bus, Unit  int
	// File is the disk's descriptor at the snapshot ("[ds] dir/disk.vmdk").
	File DatastorePath
	// Datacenter is the datacenter's inventory path without the leading
	// slash ("DC0"), for datastore HTTP access.
	Datacenter string
	// Capacity is the disk's virtual size in bytes.
	Capacity int64
	// ChangeID is the backing's CBT change ID at the snapshot ("" without
	// CBT).
	ChangeID string
}

// Env is what transports share within one session.
type Env struct {
	Client *Client
	// VM is the VM being backed up; Snapshot the snapshot being read.
	VM       *object.VirtualMachine
	Snapshot types.ManagedObjectReference
	Logger   *slog.Logger
}

// Transport reads snapshot disks one way (direct, hotadd, nbd).
type Transport interface {
	Name() source.Transport
	// Open returns the disk's content at the snapshot. Its error says why
	// this transport cannot serve the disk; auto then tries the next one.
	// The disk's Allocated may be coarse: the session narrows it with CBT.
	// Closing the disk undoes whatever Open did (a hot-added disk is
	// detached).
	Open(ctx context.Context, env *Env, d SnapshotDisk) (source.Disk, error)
}

// DatastorePath is a file on a datastore: "[Datastore] dir/file.vmdk".
type DatastorePath struct {
	Datastore string
	Path      string // relative, "/"-separated
}

// ParseDatastorePath reads "[ds] dir/file". The path must stay inside the
// datastore (no "..", not absolute).
func ParseDatastorePath(s string) (DatastorePath, error) {
	var p object.DatastorePath
	if !p.FromString(s) || p.Datastore == "" {
		return DatastorePath{}, fmt.Errorf("datastore path %q: want \"[DATASTORE] DIR/FILE\"", s)
	}
	if strings.HasPrefix(p.Path, "/") || strings.ContainsRune(p.Path, '\\') || p.Path == "" {
		return DatastorePath{}, fmt.Errorf("datastore path %q: not a relative file path", s)
	}
	for _, part := range strings.Split(p.Path, "/") {
		if part == ".." || part == "." || part == "" {
			return DatastorePath{}, fmt.Errorf("datastore path %q: not a clean path", s)
		}
	}
	return DatastorePath{Datastore: p.Datastore, Path: p.Path}, nil
}

// String returns "[ds] path".
func (p DatastorePath) String() string { return "[" + p.Datastore + "] " + p.Path }

// Dir returns the path of the file's directory ("" at the datastore root).
func (p DatastorePath) Dir() string {
	if i := strings.LastIndexByte(p.Path, '/'); i >= 0 {
		return p.Path[:i]
	}
	return ""
}
