package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/libvirtrestore"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// libvirtRestoreFlags are restore's flags for a whole domain restored into
// libvirt (--to-libvirt); --name, --network and --force are shared with
// --to-vsphere.
type libvirtRestoreFlags struct {
	to      bool
	uri     string
	poolDir string
	start   bool
}

// libvirtRestoreHelp is restore's help on --to-libvirt.
const libvirtRestoreHelp = `libvirt (a point of a libvirt:///DOMAIN backup, whose manifest records the
domain XML; local repository, local daemon): --to-libvirt writes every disk
as a qcow2 image NAME-TARGET.qcow2 in --pool-dir (refusing existing files
unless --force) and defines the domain from the recorded XML, each disk on
its image. Under another --name, or when another domain holds the original's
UUID, the domain gets a new UUID and new MAC addresses. A domain of that
name is refused (exit 2) unless --force, which stops it first and undefines
only it (with its checkpoint and snapshot metadata) once every disk is written.
--network disconnect keeps the interfaces with their link down; --start
starts the domain. See docs/libvirt.md.`

// defaultPoolDir is libvirt's default storage pool directory.
const defaultPoolDir = "/var/lib/libvirt/images"

func (f *libvirtRestoreFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.to, "to-libvirt", false, "restore the whole domain of a libvirt:// point into libvirt: disks as qcow2 images, the domain defined from the recorded XML")
	fs.StringVar(&f.uri, "libvirt-uri", libvirtconn.DefaultURI, "with --to-libvirt: connection URI of the local daemon (qemu:///system; qemu+unix:///system?socket=PATH)")
	fs.StringVar(&f.poolDir, "pool-dir", defaultPoolDir, "with --to-libvirt: directory for the disk images NAME-TARGET.qcow2")
	fs.BoolVar(&f.start, "start", false, "with --to-libvirt: start the domain once defined")
}

// libvirtOnly are the flags that only go with --to-libvirt.
var libvirtOnly = []string{"libvirt-uri", "pool-dir", "start"}

// checkLibvirt refuses flags that do not go with --to-libvirt, or
// libvirt's flags without it, and returns whether --network disconnect
// was asked for.
func (o *restoreOptions) checkLibvirt(cmd *cobra.Command) (bool, error) {
	if !o.lv.to {
		for _, n := range libvirtOnly {
			if cmd.Flags().Changed(n) {
				return false, usageError{fmt.Errorf("--%s goes with --to-libvirt", n)}
			}
		}
		return false, nil
	}
	for _, n := range []string{"to", "to-format", "disk", "rollback", "to-vsphere", "datastore", "host", "cluster", "folder",
		"power-on", "sparse-upload", "datastore-path"} {
		if cmd.Flags().Changed(n) {
			return false, usageError{fmt.Errorf("--%s does not go with --to-libvirt", n)}
		}
	}
	if _, err := libvirtconn.Socket(o.lv.uri); err != nil || libvirtconn.Remote(o.lv.uri) {
		return false, usageError{fmt.Errorf("--libvirt-uri %s: --to-libvirt writes the images on this host, so the daemon must be the local one", libvirtconn.Redact(o.lv.uri))}
	}
	switch {
	case len(o.vs.networks) == 0:
		return false, nil
	case len(o.vs.networks) == 1 && o.vs.networks[0] == "keep":
		return false, nil
	case len(o.vs.networks) == 1 && o.vs.networks[0] == "disconnect":
		return true, nil
	}
	return false, usageError{errors.New("--network with --to-libvirt: keep or disconnect")}
}

// libvirtRestoreJSON is the --json output of a restore into libvirt.
type libvirtRestoreJSON struct {
	Point    string    `json:"point"`
	SourceVM string    `json:"source_vm"`
	Time     time.Time `json:"time"`
	URI      string    `json:"libvirt_uri"`
	*libvirtrestore.Result
	Duration float64 `json:"duration_seconds"`
}

func runLibvirtRestore(cmd *cobra.Command, a *app, o restoreOptions, ref string) error {
	disconnect, err := o.checkLibvirt(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	r, m, err := a.openPoint(ctx, ref)
	if err != nil {
		return err
	}
	defer r.Close()
	if m.Config == nil || m.Config.DomainXML == "" {
		return usageError{fmt.Errorf("point %s: %w; --to-libvirt restores points of libvirt:///DOMAIN backups", m.ID, libvirtrestore.ErrNoDomainXML)}
	}
	if err := a.scanBefore(ctx, r, o.scan, m); err != nil {
		return err
	}
	c, err := libvirtconn.Dial(ctx, o.lv.uri)
	if err != nil {
		return err
	}
	defer c.Close()
	var total int64
	for _, d := range m.Disks {
		total += d.Size
	}
	start := a.clock.Now()
	bar := newProgress(a.stderr, fmt.Sprintf("restore %s to libvirt", m.ID), total)
	res, err := libvirtrestore.Restore(ctx, libvirtrestore.Request{Libvirt: c, Config: m.Config, DiskCount: len(m.Disks),
		OpenDisk: func(ctx context.Context, i int) (*restorefs.Disk, error) {
			return restorefs.OpenDisk(ctx, r, m, i, restorefs.StreamOptions())
		},
		Name: o.vs.name, PoolDir: o.lv.poolDir, Force: o.force, Start: o.lv.start, Disconnect: disconnect,
		Workers: o.workers, Progress: bar.Add})
	bar.Done(err)
	if errors.Is(err, libvirtrestore.ErrExists) {
		return usageError{err}
	}
	if res == nil {
		return err
	}
	if perr := printLibvirtRestore(a, o, m, c.URI(), res, a.clock.Since(start)); perr != nil && err == nil {
		return perr
	}
	return err
}

func printLibvirtRestore(a *app, o restoreOptions, m *repo.Manifest, uri string, res *libvirtrestore.Result, took time.Duration) error {
	if o.asJSON {
		return printJSON(a.stdout, mustJSON(libvirtRestoreJSON{Point: m.ID, SourceVM: m.VM, Time: m.Time, URI: uri,
			Result: res, Duration: took.Seconds()}))
	}
	if res.Replaced != "" {
		fmt.Fprintf(a.stdout, "the existing domain %s was destroyed and undefined (--force)\n", res.Replaced)
	}
	fmt.Fprintf(a.stdout, "restored %s (%s, %s) as domain %s (UUID %s) in %s: %d disk(s) in %s\n", m.ID, m.VM,
		m.Time.Local().Format("2006-01-02 15:04:05"), res.Domain, res.UUID, uri, len(res.Disks), took.Round(time.Millisecond))
	for _, d := range res.Disks {
		fmt.Fprintf(a.stdout, "  disk %d (%s): %s, %s written, %s zero\n", d.Index, d.Target, d.File,
			formatBytes(d.BytesWritten), formatBytes(d.BytesZero))
	}
	if res.NewIdentity {
		fmt.Fprintln(a.stdout, "new UUID and MAC addresses (a copy beside the original)")
	}
	for _, n := range res.Notes {
		fmt.Fprintln(a.stdout, "note:", n)
	}
	if res.Started {
		fmt.Fprintln(a.stdout, "started")
	}
	return nil
}
