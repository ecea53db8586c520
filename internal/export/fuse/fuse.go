package fuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// MaxRead is the largest read request the kernel sends, and its
// read-ahead window: 1 MiB (the kernel's limit for FUSE requests).
const MaxRead = 1 << 20

// Disk is what a served file reads: *restorefs.Disk.
type Disk interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
	Size() int64
}

// Options tune a mount.
type Options struct {
	// Name shows as the mount's source in /proc/mounts ("holdfast" when
	// empty); it must not hold spaces or commas.
	Name string
	// AllowOther lets users other than the mounting one open the files.
	AllowOther bool
	Logger     *slog.Logger
}

// FileName is the name of disk i's file: disk0.img, disk1.img …
func FileName(i int) string { return fmt.Sprintf("disk%d.img", i) }

// Server is a mounted directory of disk files.
type Server struct {
	srv *gofuse.Server
	dir string
}

// Mount serves disks as FileName(i) in the existing directory dir and
// returns once the kernel has the mount.
func Mount(dir string, disks []Disk, o Options) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := o.Name
	if name == "" {
		name = "holdfast"
	}
	root := &rootNode{disks: disks, log: log}
	srv, err := fs.Mount(dir, root, &fs.Options{
		MountOptions: gofuse.MountOptions{
			FsName: name, Name: "holdfast", AllowOther: o.AllowOther,
			Options:          []string{"ro", "nodev", "nosuid", "noexec"},
			MaxWrite:         MaxRead,
			MaxReadAhead:     MaxRead,
			DirectMount:      true,
			DirectMountFlags: syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC,
			// The FUSE server runs in the process whose disks the kernel
			// reads through a loop device: no readdirplus, no locks.
			DisableReadDirPlus: true,
		},
		// Sizes and content never change while mounted.
		AttrTimeout:  ptr(timeoutForever),
		EntryTimeout: ptr(timeoutForever),
	})
	if err != nil {
		return nil, fmt.Errorf("FUSE mount on %s: %w", dir, err)
	}
	return &Server{srv: srv, dir: dir}, nil
}

// Dir is the mounted directory.
func (s *Server) Dir() string { return s.dir }

// Unmount unmounts the directory (it fails while a loop device or a
// process holds a file open) and waits until the server has stopped.
func (s *Server) Unmount() error {
	if err := s.srv.Unmount(); err != nil {
		return fmt.Errorf("FUSE unmount of %s: %w", s.dir, err)
	}
	s.srv.Wait()
	return nil
}

// Wait returns when the mount has gone (unmounted by anyone).
func (s *Server) Wait() { s.srv.Wait() }

func ptr[T any](v T) *T { return &v }

const timeoutForever = 365 * 24 * time.Hour

// rootNode is the directory: one file per disk.
type rootNode struct {
	fs.Inode
	disks []Disk
	log   *slog.Logger
}

var _ = (fs.NodeOnAdder)((*rootNode)(nil))

// OnAdd adds the disk files when the root is mounted.
func (r *rootNode) OnAdd(ctx context.Context) {
	for i, d := range r.disks {
		n := &diskNode{disk: d, index: i, log: r.log}
		ch := r.NewPersistentInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFREG, Ino: uint64(i) + 2})
		r.AddChild(FileName(i), ch, false)
	}
}

// diskNode is one disk's file.
type diskNode struct {
	fs.Inode
	disk  Disk
	index int
	log   *slog.Logger
}

var (
	_ = (fs.NodeGetattrer)((*diskNode)(nil))
	_ = (fs.NodeOpener)((*diskNode)(nil))
	_ = (fs.NodeReader)((*diskNode)(nil))
	_ = (fs.NodeSetattrer)((*diskNode)(nil))
)

// Getattr gives the disk's exact size, read-only for everyone allowed in.
func (n *diskNode) Getattr(_ context.Context, _ fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	out.Mode = 0o444
	out.Size = uint64(n.disk.Size())
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = MaxRead
	return 0
}

// Setattr refuses: the files never change.
func (n *diskNode) Setattr(context.Context, fs.FileHandle, *gofuse.SetAttrIn, *gofuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// Open refuses writing; reads keep the kernel's page cache across opens.
func (n *diskNode) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, gofuse.FOPEN_KEEP_CACHE, 0
}

// Read fills dest from the disk at off.
func (n *diskNode) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	got, err := n.disk.ReadAtContext(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return nil, syscall.EINTR
		}
		n.log.Error("read of a published disk failed", "disk", n.index, "offset", off, "length", len(dest), "err", err)
		return nil, syscall.EIO
	}
	return gofuse.ReadResultData(dest[:got]), 0
}
