package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/throttle"
	"github.com/spf13/cobra"
)

type backupOptions struct {
	name      string
	json      bool
	chunkSize string
	workers   int
	readLimit string
	src       sourceOptions
	qemu      qemuFlags
	vsphere   vsphereFlags
	quiesce   bool
	// datastorePaths (--datastore-path NAME=DIR) and proxyVM
	// (--vsphere-vm) offer the direct and hotadd transports.
	datastorePaths []string
	proxyVM        string
	libvirtURI     string
	libvirtRunDir  string
	exclude        fsmap.Options
}

func newBackupCommand(a *app) *cobra.Command {
	var o backupOptions
	c := &cobra.Command{
		Use:   "backup --name VM SOURCE...",
		Short: "Back up VM disks into one new restore point",
		Long: `Back up every SOURCE as disk 0, 1, ... of one new restore point of VM.
A SOURCE is a raw image, block device, qcow2 or VMDK (flat or monolithicSparse)
given as a path or a file:// URL, or an NBD export (nbd://host:port/export,
nbds://… with TLS, nbd+unix:///export?socket=PATH), or a whole VM given as the
only SOURCE: qemu:///PATH/qmp.sock, libvirt:///DOMAIN (the local qemu:///system;
--libvirt-uri for another daemon), libvirt+ssh://USER@HOST[:PORT]/DOMAIN (over SSH,
host key from known_hosts) or vsphere://USER@HOST[:PORT]/DC/vm/…/VM (the
password from --vsphere-password-file or $HOLDFAST_VSPHERE_PASSWORD). Only chunks
the repository lacks are stored.

An image's format is --format, else the format the VM's previous point read
the same file with, else detected from its content. A detected image never
reads another file: a qcow2 image with a backing file or a VMDK descriptor
naming extent files is refused (the guest of a raw disk can write such a
header). Give --format vmdk for VMDK descriptors, and --format qcow2
--follow-backing for qcow2 images whose backing chain the host made.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackup(cmd, a, o, args)
		},
	}
	c.Flags().StringVar(&o.name, "name", "", "VM name the restore point belongs to (required)")
	c.Flags().BoolVar(&o.json, "json", false, "print the result as JSON")
	c.Flags().StringVar(&o.chunkSize, "chunk-size", "", "chunk size for this backup (default: the repository's)")
	c.Flags().IntVar(&o.workers, "workers", 0, "parallel chunk workers (default 2 × CPUs)")
	c.Flags().StringVar(&o.src.bitmap, "bitmap", "", "nbd sources: use the export's qemu:dirty-bitmap:NAME context as changed block tracking")
	c.Flags().IntVar(&o.src.connections, "nbd-connections", 1, "nbd sources: connections to read over (the server must allow that many clients)")
	c.Flags().StringVar(&o.src.tlsCA, "tls-ca", "", "nbds sources: CA certificate (PEM) to verify the server")
	c.Flags().StringVar(&o.src.tlsCert, "tls-cert", "", "nbds sources: client certificate (PEM)")
	c.Flags().StringVar(&o.src.tlsKey, "tls-key", "", "nbds sources: client key (PEM)")
	c.Flags().StringVar(&o.src.tlsServerName, "tls-server-name", "", "nbds sources: expected server name (default: the URL host)")
	c.Flags().StringVar(&o.qemu.guestAgent, "guest-agent", "", "qemu sources: guest agent socket, to freeze the guest file systems around the snapshot")
	c.Flags().DurationVar(&o.qemu.guestTimeout, "guest-timeout", 10*time.Second, "qemu sources: how long to wait for each guest agent call")
	c.Flags().StringVar(&o.qemu.transport, "transport", string(source.TransportAuto), "qemu and vsphere sources: "+source.PreferenceNames())
	c.Flags().BoolVar(&o.quiesce, "quiesce", false, "vsphere and libvirt sources: quiesce the guest through VMware Tools or the QEMU guest agent for the snapshot\n(falls back to crash-consistent with a warning)")
	o.vsphere.register(c.Flags())
	c.Flags().StringArrayVar(&o.datastorePaths, "datastore-path", nil, "vsphere sources: read datastore NAME directly at local directory DIR (NAME=DIR: an NFS datastore\nmounted here, a SAN/VMFS path): the direct transport; repeat for more")
	c.Flags().StringVar(&o.proxyVM, "vsphere-vm", "", "vsphere sources: this host is VM NAME of the inventory: attach the snapshot's disks to it (the hotadd transport)")
	c.Flags().StringVar(&o.libvirtURI, "libvirt-uri", "", "libvirt sources: connection URI of the daemon (default qemu:///system; qemu+unix:///system?socket=PATH;\nqemu+ssh://USER@HOST[:PORT]/system[?socket=PATH&keyfile=FILE&known_hosts=FILE])")
	c.Flags().StringVar(&o.libvirtRunDir, "libvirt-scratch-dir", "", "libvirt sources: directory on the libvirt host for the backup's NBD socket and scratch files\n(default $TMPDIR here, /var/tmp on a remote host)")
	c.Flags().StringVar(&o.qemu.nbdTLSDir, "nbd-tls", "", "qemu sources: export over NBD with TLS using DIR/{ca-cert,server-cert,server-key}.pem (verify with --tls-ca)")
	c.Flags().StringVar(&o.src.format, "format", "", "image format of every SOURCE: raw, qcow2 or vmdk (default: the format the VM's\nprevious point read the same file with, else detected; a detected image never reads other files)")
	c.Flags().BoolVar(&o.src.followBacking, "follow-backing", false, "read the backing chain of qcow2 SOURCEs (needs --format qcow2; only for images the host made)")
	c.Flags().BoolVar(&o.exclude.Free, "exclude-free", false, "leave out the free blocks of ext2/3/4 and xfs file systems (stored and restored as zeros)")
	c.Flags().BoolVar(&o.exclude.Swap, "exclude-swap", false, "leave out swap partitions and swap files (/swapfile, /swap.img, …) after their header page (stored and restored as zeros)")
	c.Flags().StringArrayVar(&o.exclude.Paths, "exclude", nil, "leave out the data of the files at or beneath PATH in the guest's ext2/3/4 and xfs file systems\n(restored as zeros; files with several links are kept); repeat for more")
	c.Flags().StringVar(&o.readLimit, "read-limit", "", "limit reads from the sources to this many bytes per second (e.g. 100MiB)")
	return c
}

// backupJSON is the --json output (a contract other tools rely on).
type backupJSON struct {
	Point    string            `json:"point"`
	VM       string            `json:"vm"`
	Duration float64           `json:"duration_seconds"`
	Notes    map[string]string `json:"notes,omitempty"`
	Disks    []diskJSON        `json:"disks"`
}

type diskJSON struct {
	Index       int      `json:"index"`
	Size        int64    `json:"size"`
	ChunkSize   int      `json:"chunk_size"`
	Format      string   `json:"format"`
	Location    string   `json:"location"`
	Transport   string   `json:"transport"`
	CBT         string   `json:"cbt,omitempty"`
	ChangeID    string   `json:"change_id,omitempty"`
	ChangeBase  string   `json:"change_base,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	BytesRead   int64    `json:"bytes_read"`
	BytesZero   int64    `json:"bytes_zero"`
	BytesReused int64    `json:"bytes_reused"`
	BytesNew    int64    `json:"bytes_new"`
	BytesStored int64    `json:"bytes_stored"`
	// Excluded counts the bytes left out per reason (free, swap).
	Excluded map[string]int64 `json:"excluded,omitempty"`
}

func toDiskJSON(d repo.DiskManifest) diskJSON {
	return diskJSON{Index: d.Index, Size: d.Size, ChunkSize: d.ChunkSize, Format: d.Format, Location: d.Location,
		Transport: transportName(d.Transport), CBT: d.CBT, ChangeID: d.ChangeID, ChangeBase: d.ChangeBase, Warnings: d.Warnings,
		BytesRead: d.Stats.BytesRead, BytesZero: d.Stats.BytesZero, BytesReused: d.Stats.BytesReused,
		BytesNew: d.Stats.BytesNew, BytesStored: d.Stats.BytesStored, Excluded: excludedBytes(d.Excluded)}
}

// excludedBytes is the per-reason count of a disk's excluded record.
func excludedBytes(e *repo.Excluded) map[string]int64 {
	if e == nil {
		return nil
	}
	return e.Bytes
}

// excludedSummary says "1.2 GiB (free 1.1 GiB, swap 100 MiB)".
func excludedSummary(e *repo.Excluded) string {
	var parts []string
	for _, k := range []string{fsmap.ReasonFree, fsmap.ReasonSwap, fsmap.ReasonPath} {
		if n := e.Bytes[k]; n > 0 {
			parts = append(parts, k+" "+formatBytes(n))
		}
	}
	if len(parts) == 0 {
		return formatBytes(e.Total())
	}
	return formatBytes(e.Total()) + " (" + strings.Join(parts, ", ") + ")"
}

func transportName(t string) string {
	if t == "" {
		return "file"
	}
	return t
}

func runBackup(cmd *cobra.Command, a *app, o backupOptions, args []string) error {
	if o.name == "" {
		return usageError{fmt.Errorf("--name VM is required")}
	}
	if err := repo.ValidateVMName(o.name); err != nil {
		return usageError{err}
	}
	if len(args) == 0 {
		return usageError{fmt.Errorf("give at least one SOURCE to back up")}
	}
	if err := checkExcludePaths(o.exclude.Paths); err != nil {
		return err
	}
	ctx := cmd.Context()
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	chunkSize := r.Config().ChunkSize
	if o.chunkSize != "" {
		if chunkSize, err = parseSize(o.chunkSize); err == nil {
			err = repo.ValidateChunkSize(chunkSize)
		}
		if err != nil {
			return usageError{err}
		}
	}
	var limit int
	if o.readLimit != "" {
		if limit, err = parseSize(o.readLimit); err != nil {
			return usageError{fmt.Errorf("--read-limit: %w", err)}
		}
	}
	start := a.clock.Now()
	set, err := openSourceSet(ctx, a, r, o.name, args, o)
	if err != nil {
		return err
	}
	var total int64
	for _, d := range set.disks {
		total += d.Size()
	}
	host, _ := os.Hostname()
	var readLimit *throttle.Bucket
	if limit > 0 {
		readLimit = throttle.NewBucket(int64(limit), 0, nil)
	}
	bar := newProgress(a.stderr, "backup "+o.name, total)
	m, err := pipeline.BackupPoint(ctx, r, pipeline.PointRequest{VM: o.name, Disks: set.disks, ChunkSize: chunkSize,
		Hostname: host, Notes: set.notes, Config: set.config, Logger: a.logger(), Exclude: o.exclude},
		pipeline.Options{Workers: o.workers, Progress: bar.Add, ReadLimit: readLimit})
	bar.Done(err)
	if rerr := set.release(ctx, err == nil); rerr != nil {
		if err == nil {
			a.logger().Warn("restore point committed, but cleaning up the snapshot failed; the next backup retries", "err", rerr)
		} else {
			err = fmt.Errorf("%w (and cleaning up the snapshot: %v)", err, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("backup of %s failed, no restore point was created: %w", o.name, err)
	}
	return printBackup(a, o.json, m, a.clock.Since(start))
}

func printBackup(a *app, asJSON bool, m *repo.Manifest, took time.Duration) error {
	out := backupJSON{Point: m.ID, VM: m.VM, Duration: took.Seconds(), Notes: m.Notes, Disks: []diskJSON{}}
	for _, d := range m.Disks {
		out.Disks = append(out.Disks, toDiskJSON(d))
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(a.stdout, "restore point %s of %s created in %s\n", m.ID, m.VM, took.Round(time.Millisecond))
	for _, k := range []string{"guest_quiesce", "transport_choice", "cleaned_leftovers", "cbt_enabled", "skipped_disks"} {
		if v := m.Notes[k]; v != "" {
			fmt.Fprintf(a.stdout, "  %s: %s\n", strings.ReplaceAll(k, "_", " "), v)
		}
	}
	for _, d := range out.Disks {
		fmt.Fprintf(a.stdout, "  disk %d (%s %s): size %s, read %s, zero %s, reused %s, new %s, stored %s\n",
			d.Index, d.Format, d.Location, formatBytes(d.Size), formatBytes(d.BytesRead), formatBytes(d.BytesZero),
			formatBytes(d.BytesReused), formatBytes(d.BytesNew), formatBytes(d.BytesStored))
		if e := m.Disks[d.Index].Excluded; e != nil {
			fmt.Fprintf(a.stdout, "  disk %d: excluded %s\n", d.Index, excludedSummary(e))
		}
		for _, w := range d.Warnings {
			fmt.Fprintf(a.stdout, "  warning: disk %d: %s\n", d.Index, w)
		}
	}
	return nil
}
