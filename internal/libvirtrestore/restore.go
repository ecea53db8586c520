package libvirtrestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// Errors of a restore into libvirt.
var (
	// ErrNoDomainXML is matched when the point records no domain XML (not
	// a libvirt backup).
	ErrNoDomainXML = errors.New("the restore point records no libvirt domain XML")
	// ErrExists is matched when a domain of the restored name exists and
	// replacing it was not asked for.
	ErrExists = errors.New("a domain of that name exists")
)

// Libvirt is what a restore asks of libvirtd (*libvirtconn.Conn has it).
type Libvirt interface {
	DomainLookupByName(name string) (golibvirt.Domain, error)
	DomainLookupByUUID(id golibvirt.UUID) (golibvirt.Domain, error)
	DomainGetXMLDesc(dom golibvirt.Domain, flags golibvirt.DomainXMLFlags) (string, error)
	DomainIsActive(dom golibvirt.Domain) (int32, error)
	DomainDestroy(dom golibvirt.Domain) error
	DomainUndefineFlags(dom golibvirt.Domain, flags golibvirt.DomainUndefineFlagsValues) error
	DomainDefineXMLFlags(xml string, flags golibvirt.DomainDefineFlags) (golibvirt.Domain, error)
	DomainCreate(dom golibvirt.Domain) error
}

// Request is a restore of a point into libvirt.
type Request struct {
	Libvirt Libvirt
	// Config is the point's recorded configuration (DomainXML).
	Config *repo.VMConfig
	// DiskCount is the number of disks of the point; OpenDisk opens one.
	DiskCount int
	OpenDisk  func(ctx context.Context, i int) (*restorefs.Disk, error)
	// Name of the restored domain; "" keeps the recorded one.
	Name string
	// PoolDir receives the images NAME-TARGET.qcow2.
	PoolDir string
	// Force replaces image files and a domain of the same name.
	Force, Start, Disconnect bool
	Workers                  int
	Progress                 func(n int64)
	// Rand makes UUIDs and MACs; nil is crypto/rand.
	Rand io.Reader
}

// Result says what the restore did.
type Result struct {
	Domain string `json:"domain"`
	UUID   string `json:"uuid"`
	// NewIdentity: a new UUID and MACs (not the original's).
	NewIdentity bool         `json:"new_identity"`
	MACs        []string     `json:"macs,omitempty"`
	Disks       []DiskResult `json:"disks"`
	// Replaced names the domain --force destroyed and undefined.
	Replaced     string   `json:"replaced,omitempty"`
	Disconnected bool     `json:"network_disconnected"`
	Started      bool     `json:"started"`
	Notes        []string `json:"notes,omitempty"`
}

// DiskResult is one restored disk.
type DiskResult struct {
	Index        int    `json:"index"`
	Target       string `json:"target"`
	File         string `json:"file"`
	Size         int64  `json:"size"`
	BytesWritten int64  `json:"bytes_written"`
	BytesZero    int64  `json:"bytes_zero"`
	// Replaced: a file of that name was there and was replaced (--force).
	Replaced bool `json:"replaced,omitempty"`
}

// plan is what Restore decided before writing anything.
type plan struct {
	rec      *libvirt.Recorded
	def      *libvirt.Rewritten
	files    []string
	existed  []bool
	replace  *golibvirt.Domain // the domain of the same name, --force
	oldXML   string            // its definition, to define it again if ours fails
	identity bool
}

// Restore writes each disk of the point as a qcow2 image in PoolDir and
// defines (and with Start starts) the domain from the recorded XML. See
// the package documentation for the order of steps and what a failure
// leaves.
func Restore(ctx context.Context, q Request) (*Result, error) {
	p, err := prepare(q)
	if err != nil {
		return nil, err
	}
	res := &Result{Domain: p.def.Name, UUID: p.def.UUID, NewIdentity: p.identity, MACs: p.def.MACs,
		Disconnected: q.Disconnect, Notes: p.def.Notes}
	if p.replace != nil {
		res.Replaced = p.def.Name
		if err := stop(q.Libvirt, *p.replace); err != nil {
			return nil, err
		}
	}
	disks, err := writeDisks(ctx, q, p)
	if err != nil {
		if p.replace != nil {
			err = fmt.Errorf("%w (the domain %s was stopped and is still defined as it was)", err, p.def.Name)
		}
		return nil, err
	}
	res.Disks = disks
	dom, err := define(q.Libvirt, p)
	if err != nil {
		removeCreated(p)
		return nil, err
	}
	if p.replace != nil {
		res.Notes = append(res.Notes, "the replaced domain's checkpoint and snapshot metadata were removed: the next backup of this domain reads every disk in full")
	}
	if q.Start {
		if err := q.Libvirt.DomainCreate(dom); err != nil {
			return res, fmt.Errorf("the domain %s is defined but did not start: %w", p.def.Name, err)
		}
		res.Started = true
	}
	return res, nil
}

// prepare reads the XML, decides the name and identity, and refuses an
// existing domain or image without Force, all before any change.
func prepare(q Request) (*plan, error) {
	if q.Config == nil || q.Config.DomainXML == "" {
		return nil, ErrNoDomainXML
	}
	rec, err := libvirt.ParseRecorded(q.Config.DomainXML)
	if err != nil {
		return nil, err
	}
	if len(rec.Targets) != q.DiskCount {
		return nil, fmt.Errorf("%w: the XML has %d backed-up disk(s), the point %d", libvirt.ErrDomainXML, len(rec.Targets), q.DiskCount)
	}
	p := &plan{rec: rec}
	name := rec.Name
	if q.Name != "" {
		if err := libvirt.CheckDomainName(q.Name); err != nil {
			return nil, err
		}
		name = q.Name
	}
	if err := p.lookup(q, name); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(q.PoolDir)
	if err != nil {
		return nil, err
	}
	for _, t := range rec.Targets {
		f := filepath.Join(dir, name+"-"+t+".qcow2")
		_, err := os.Lstat(f)
		switch {
		case err == nil && !q.Force:
			return nil, fmt.Errorf("%w: %s exists (use --force to replace it)", pipeline.ErrTargetExists, f)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
		p.files, p.existed = append(p.files, f), append(p.existed, err == nil)
	}
	o := libvirt.RewriteOptions{Name: name, KeepIdentity: !p.identity, Rand: q.Rand}
	for _, f := range p.files {
		o.Disks = append(o.Disks, libvirt.DiskSource{File: f})
	}
	if q.Disconnect {
		o.Network = libvirt.NetworkDisconnect
	}
	p.def, err = libvirt.Rewrite(q.Config.DomainXML, o)
	return p, err
}

// lookup finds a domain of the restored name (refused without Force) and
// decides the identity: the recorded UUID and MACs only for the recorded
// name, and only when no other domain holds that UUID.
func (p *plan) lookup(q Request, name string) error {
	l := q.Libvirt
	dom, err := l.DomainLookupByName(name)
	switch {
	case err == nil && !q.Force:
		return fmt.Errorf("%w: %s (restore under another --name, or --force to destroy and replace it)", ErrExists, name)
	case err == nil:
		p.replace = &dom
		if p.oldXML, err = l.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive|golibvirt.DomainXMLSecure); err != nil {
			return fmt.Errorf("read the definition of %s: %w", name, err)
		}
	case !golibvirt.IsNotFound(err):
		return fmt.Errorf("look up domain %s: %w", name, err)
	}
	p.identity = name != p.rec.Name
	if p.identity {
		return nil
	}
	id, err := uuid.Parse(p.rec.UUID)
	if err != nil { // no usable recorded UUID: libvirt's would be new anyway
		p.identity = true
		return nil
	}
	holder, err := l.DomainLookupByUUID(golibvirt.UUID(id))
	switch {
	case err == nil && (p.replace == nil || holder.Name != p.replace.Name):
		p.identity = true // the original lives on under another name
	case err != nil && !golibvirt.IsNotFound(err):
		return fmt.Errorf("look up domain by UUID %s: %w", p.rec.UUID, err)
	}
	return nil
}

// stop destroys the domain to be replaced if it runs: its images may be
// the very files the restore replaces, which QEMU holds locked.
func stop(l Libvirt, dom golibvirt.Domain) error {
	active, err := l.DomainIsActive(dom)
	if err != nil {
		return fmt.Errorf("domain %s: %w", dom.Name, err)
	}
	if active == 1 {
		if err := l.DomainDestroy(dom); err != nil {
			return fmt.Errorf("destroy domain %s: %w", dom.Name, err)
		}
	}
	return nil
}

// writeDisks restores every disk into a temporary image beside its file
// and renames them all into place only when all are written: a failure
// leaves no new file and every replaced one as it was.
func writeDisks(ctx context.Context, q Request, p *plan) ([]DiskResult, error) {
	var targets []*pipeline.Target
	abort := func() {
		for _, t := range targets {
			t.Abort()
		}
	}
	out := make([]DiskResult, len(p.files))
	for i, f := range p.files {
		st, t, err := writeDisk(ctx, q, i, f)
		if err != nil {
			abort()
			return nil, err
		}
		targets = append(targets, t)
		out[i] = DiskResult{Index: i, Target: p.rec.Targets[i], File: f, Size: st.size, BytesWritten: st.BytesWritten,
			BytesZero: st.BytesZero, Replaced: p.existed[i]}
	}
	for i, t := range targets {
		if err := t.Close(); err != nil {
			targets = targets[i+1:]
			abort()
			removeCreated(&plan{files: p.files[:i], existed: p.existed[:i]})
			return nil, err
		}
	}
	return out, nil
}

type diskStats struct {
	pipeline.RestoreStats
	size int64
}

func writeDisk(ctx context.Context, q Request, i int, file string) (diskStats, *pipeline.Target, error) {
	d, err := q.OpenDisk(ctx, i)
	if err != nil {
		return diskStats{}, nil, err
	}
	defer d.Close()
	t, err := pipeline.OpenTarget(ctx, file, d.Size(), pipeline.TargetOptions{Format: "qcow2", Force: q.Force})
	if err != nil {
		return diskStats{}, nil, err
	}
	st, err := pipeline.RestoreDisk(ctx, d, t.RestoreTarget, pipeline.Options{Workers: q.Workers, Progress: q.Progress})
	if err != nil {
		return diskStats{}, nil, t.Fail(err)
	}
	return diskStats{RestoreStats: st, size: d.Size()}, t, nil
}

// removeCreated removes the images this restore created (not those it
// replaced).
func removeCreated(p *plan) {
	for i, f := range p.files {
		if !p.existed[i] {
			_ = os.Remove(f)
		}
	}
}

// define undefines the domain being replaced (only now that every disk is
// written) and defines the restored one; should that fail, the replaced
// domain is defined again.
func define(l Libvirt, p *plan) (golibvirt.Domain, error) {
	if p.replace != nil {
		flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
			golibvirt.DomainUndefineCheckpointsMetadata | golibvirt.DomainUndefineKeepNvram | golibvirt.DomainUndefineKeepTpm
		if err := l.DomainUndefineFlags(*p.replace, flags); err != nil {
			return golibvirt.Domain{}, fmt.Errorf("undefine domain %s: %w", p.replace.Name, err)
		}
	}
	dom, err := l.DomainDefineXMLFlags(p.def.XML, 0)
	if err == nil {
		return dom, nil
	}
	err = fmt.Errorf("define domain %s: %w", p.def.Name, err)
	if p.replace != nil {
		if _, rerr := l.DomainDefineXMLFlags(p.oldXML, 0); rerr != nil {
			return golibvirt.Domain{}, fmt.Errorf("%w; defining the replaced domain again failed too: %w", err, rerr)
		}
		err = fmt.Errorf("%w (the replaced domain was defined again, without its checkpoint and snapshot metadata)", err)
	}
	return golibvirt.Domain{}, err
}
