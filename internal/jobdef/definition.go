package jobdef

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Definition is a backup job's definition (see the package documentation
// for its JSON form).
type Definition struct {
	VMs        []VM        `json:"vms,omitempty"`
	Select     []Selection `json:"select,omitempty"`
	Repository string      `json:"repository,omitempty"`
	Retention  Retention   `json:"retention,omitzero"`
	ChunkSize  int         `json:"chunk_size,omitempty"` // 0: the repository's
	// Transport is the preferred transport ("" or "auto": any that fits).
	Transport string `json:"transport,omitempty"`
	ReadLimit int64  `json:"read_limit,omitempty"` // bytes/s per disk, 0: unlimited
	// Throttle are traffic rules for the proxy → repository link
	// (internal/throttle grammar, one rule per entry).
	Throttle []string `json:"throttle,omitempty"`
	Retries  Retries  `json:"retries,omitzero"`
	// Guest processing: scripts run in each VM's guest around its snapshot.
	Guest Guest `json:"guest,omitzero"`
	// Image formats of the file disks (see Formats).
	Format          string            `json:"format,omitempty"`
	DiskFormats     map[string]string `json:"disk_formats,omitempty"`
	RecordedFormats map[string]string `json:"recorded_formats,omitempty"`
	FollowBacking   bool              `json:"follow_backing,omitempty"`
	// ExcludeFree and ExcludeSwap leave out the free blocks of ext2/3/4
	// and xfs and the body of swap partitions (internal/fsmap).
	ExcludeFree bool `json:"exclude_free,omitempty"`
	ExcludeSwap bool `json:"exclude_swap,omitempty"`
	// ExcludePaths are paths inside the guests' file systems whose files'
	// data is left out.
	ExcludePaths []string `json:"exclude_paths,omitempty"`
	// Missed is what a schedule missed while the server was down does
	// when the server starts: MissedRunOnce ("" too) or MissedSkip.
	Missed string `json:"missed,omitempty"`
	// Maintenance is a maintenance job's work (kind "maintenance" only).
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	// Copy is a copy job's work (kind "copy" only).
	Copy *Copy `json:"copy,omitempty"`
	// ScanAfter scans each committed point for malware (nil: no scan).
	ScanAfter *ScanAfter `json:"scan_after,omitempty"`
	// RPO is the recovery point objective: how old a VM's newest good
	// point may grow (ParseRPO: "36h", "2d"); "": derived from the
	// schedule (DefaultRPO). The dashboard lists VMs outside it.
	RPO string `json:"rpo,omitempty"`
	// Notify sends messages to notification targets when a session ends
	// (see Notify).
	Notify []Notify `json:"notify,omitempty"`

	// Secrets: inline values a request may carry (the API seals them and
	// clears them), and the references to the sealed secrets.
	Password       string `json:"password,omitempty"`
	PasswordSecret string `json:"password_secret,omitempty"`
	GuestSSHKey    string `json:"guest_ssh_key,omitempty"`
	GuestKeySecret string `json:"guest_ssh_key_secret,omitempty"`
}

// VM is one listed VM and its disks (image paths, NBD URLs or one
// qemu:///PATH/qmp.sock for a whole QEMU VM).
type VM struct {
	Name  string   `json:"name"`
	Disks []string `json:"disks,omitempty"`
	// Guest processing paths: the guest's sshd (host:port), the pinned
	// host key fingerprint, the QEMU guest agent socket (fallback).
	GuestSSH     string `json:"guest_ssh,omitempty"`
	GuestHostKey string `json:"guest_host_key,omitempty"`
	GuestAgent   string `json:"guest_agent,omitempty"`
}

// Selection selects the VMs of a source when a session starts: those
// whose names match Pattern (a shell glob; "" or "*": all) and, for a
// vSphere source, that lie in Folder (an inventory path, recursive) and
// carry Tag (a vSphere tag, "NAME" or "CATEGORY/NAME"), or, for a libvirt
// source, whose Holdfast metadata holds Metadata ("KEY=VALUE"). The fields
// of one selection all apply; several selections add up (see selection.go).
type Selection struct {
	Source   string `json:"source"`
	Pattern  string `json:"pattern,omitempty"`
	Folder   string `json:"folder,omitempty"`
	Tag      string `json:"tag,omitempty"`
	Metadata string `json:"metadata,omitempty"`
}

// Retention is what a job keeps of each VM's points: the GFS policy of
// standalone `holdfast forget` (keep_last, keep_daily, keep_weekly,
// keep_monthly, keep_yearly; all 0: keep every point). The server applies
// it after each successful run; a held point is never removed.
type Retention = repo.Policy

// Retries re-run a failed VM.
type Retries struct {
	Count       int `json:"count,omitempty"`        // re-runs of a failed VM
	WaitSeconds int `json:"wait_seconds,omitempty"` // before each re-run
}

// Guest is a job's guest processing.
type Guest struct {
	PreFreeze      string `json:"pre_freeze,omitempty"` // script text
	PostThaw       string `json:"post_thaw,omitempty"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty"` // per script; 0: 10 minutes
	Policy         string `json:"policy,omitempty"`          // fail (default) or warn
	User           string `json:"user,omitempty"`            // SSH user; "": root
}

// Enabled reports whether the job runs guest scripts.
func (g Guest) Enabled() bool { return g.PreFreeze != "" || g.PostThaw != "" }

// UnmarshalJSON reads a VM given as a name or as an object.
func (v *VM) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*v = VM{Name: name}
		return nil
	}
	type plain VM
	return strictDecode(b, (*plain)(v))
}

// Decode parses a definition strictly: a JSON object whose keys are all
// known. Errors name the field and wrap ErrInvalid.
func Decode(raw []byte) (Definition, error) {
	var d Definition
	if err := strictDecode(raw, &d); err != nil {
		return Definition{}, decodeError(err)
	}
	return d, nil
}

// UnmarshalJSON decodes strictly (see Decode), so a request carrying a
// definition refuses unknown keys.
func (d *Definition) UnmarshalJSON(b []byte) error {
	type plain Definition
	var p plain
	if err := strictDecode(b, &p); err != nil {
		return decodeError(err)
	}
	*d = Definition(p)
	return nil
}

// Parse reads a stored definition leniently: keys it does not know (an
// older version's) are ignored. It does not validate.
func Parse(raw []byte) (Definition, error) {
	type plain Definition
	var p plain
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return Definition{}, nil
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return Definition{}, fmt.Errorf("job definition: %w", err)
	}
	return Definition(p), nil
}

func strictDecode(b []byte, v any) error {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return errors.New("want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// decodeError names the field of a decoding error: an unknown key, a value
// of the wrong type.
func decodeError(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return err
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fieldErr("definition."+te.Field, "want a %s, not a JSON %s", te.Type, te.Value)
	}
	msg := err.Error()
	if key, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		key = strings.Trim(key, `"`)
		if key == "compression" {
			return fieldErr("definition.compression",
				"a job cannot choose compression: it is the repository's (holdfast repo init --compression)")
		}
		return fieldErr("definition", "unknown field %q", key)
	}
	return fieldErr("definition", "%s", strings.TrimPrefix(msg, "json: "))
}
