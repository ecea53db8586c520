package repoagent

import (
	"encoding/json"

	"golang.org/x/sys/unix"
)

// StorageReport is the repository agent's heartbeat capability "storage":
// the size and free space of the file system holding the repository,
// measured each time a heartbeat is encoded (the server's metrics export
// them as holdfast_repository_filesystem_{size,free}_bytes).
// Remote marks object storage, which reports no file system.
type StorageReport struct {
	Path   string
	Remote bool
	// Hardening, if set, is the agent's --immutable mode.
	Hardening *Hardening
}

// StorageStatus is the "storage" capability's JSON.
type StorageStatus struct {
	SizeBytes int64  `json:"filesystem_size_bytes"`
	FreeBytes int64  `json:"filesystem_free_bytes"`
	Error     string `json:"error,omitempty"`
	// ImmutableDays is the hardened repository's window (--immutable);
	// ImmutableFiles whether stored files get the immutable attribute,
	// ImmutableFilesError why not.
	ImmutableDays       int    `json:"immutable_days,omitempty"`
	ImmutableFiles      *bool  `json:"immutable_files,omitempty"`
	ImmutableFilesError string `json:"immutable_files_error,omitempty"`
}

// MarshalJSON encodes {"storage": StorageStatus} as measured now.
func (s StorageReport) MarshalJSON() ([]byte, error) {
	var st StorageStatus
	var fs unix.Statfs_t
	if s.Remote {
		st.Error = "object storage: no capacity to report"
	} else if err := unix.Statfs(s.Path, &fs); err != nil {
		st.Error = err.Error()
	} else {
		st.SizeBytes = int64(fs.Blocks) * fs.Bsize
		st.FreeBytes = int64(fs.Bavail) * fs.Bsize
	}
	if h := s.Hardening; h != nil {
		st.ImmutableDays, st.ImmutableFiles, st.ImmutableFilesError = h.Days, &h.Attributes, h.AttrError
	}
	return json.Marshal(map[string]StorageStatus{"storage": st})
}
