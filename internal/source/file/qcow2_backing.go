package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lima-vm/go-qcow2reader"
	"github.com/lima-vm/go-qcow2reader/image/raw"
)

// qcow2MaxChain bounds the backing chain, which also stops loops.
const qcow2MaxChain = 16

// ErrReference is matched by the error for an image that names another
// file (a qcow2 backing file, a VMDK extent) when the caller did not allow
// following it.
var ErrReference = errors.New("image names another file")

// checkBackingAllowed refuses a backing file the options do not allow: the
// backing file name is a path on the host, and an image whose format was
// detected may be a raw disk whose guest wrote a qcow2 header naming any
// host file.
func checkBackingAllowed(img *qcow2Image, o Options) error {
	switch {
	case img.backingFile == "" || o.FollowBacking:
		return nil
	case o.Format == FormatAuto:
		return fmt.Errorf("%w: backing file %q not followed: the format was detected from the content, which the guest of a raw disk can forge; give the format (--format raw for a raw disk, or --format qcow2 --follow-backing for a qcow2 image whose chain is the host's)",
			ErrReference, img.backingFile)
	default:
		return fmt.Errorf("%w: backing file %q not followed: backing chains are only read when asked (--follow-backing)",
			ErrReference, img.backingFile)
	}
}

// openBackingChain validates the backing chain of top before go-qcow2reader
// follows it (the library has no depth limit and trusts every header) and
// opens each backing file as a layer for Allocated.
func (d *qcow2Disk) openBackingChain(ctx context.Context, path string, top *qcow2Image) error {
	name, img := path, top
	for depth := 1; img != nil && img.backingFile != ""; depth++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if depth > qcow2MaxChain {
			return fmt.Errorf("backing chain longer than %d images (loop?)", qcow2MaxChain)
		}
		next, err := resolveBackingPath(name, img.backingFile)
		if err != nil {
			return fmt.Errorf("backing file %q: %w", img.backingFile, err)
		}
		layer, err := openBackingLayer(next, img.backingFormat)
		if err != nil {
			return fmt.Errorf("backing file %s: %w", next, err)
		}
		d.layers = append(d.layers, layer)
		d.closers = append(d.closers, layer.file)
		name, img = next, layer.img
	}
	return nil
}

// resolveBackingPath resolves a backing file name as go-qcow2reader does:
// relative to the directory of the image naming it.
func resolveBackingPath(image, backing string) (string, error) {
	if filepath.IsAbs(backing) {
		return backing, nil
	}
	return filepath.Abs(filepath.Join(filepath.Dir(image), backing))
}

// openBackingLayer opens a backing file and checks that go-qcow2reader will
// read it as qcow2 or raw, the formats it supports.
func openBackingLayer(path, format string) (qcow2Layer, error) {
	f, st, err := openDiskFile(path)
	if err != nil {
		return qcow2Layer{}, err // deliberately not source.ErrNotFound: the disk itself exists
	}
	layer, err := inspectBackingFile(f, st, format)
	if err != nil {
		_ = f.Close()
		return qcow2Layer{}, err
	}
	return layer, nil
}

func inspectBackingFile(f *os.File, st os.FileInfo, format string) (qcow2Layer, error) {
	if !st.Mode().IsRegular() {
		return qcow2Layer{}, errors.New("not a regular file")
	}
	layer := qcow2Layer{ra: f, file: f, fileSize: st.Size()}
	head := make([]byte, len(qcow2Magic))
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return layer, err
	}
	isQcow2 := bytes.Equal(head, []byte(qcow2Magic))
	switch {
	case format == "raw":
		return layer, nil
	case format == "qcow2" || (format == "" && isQcow2):
		if !isQcow2 {
			return layer, errors.New("declared qcow2 but has no qcow2 magic")
		}
		img, err := readQcow2Image(f, st.Size())
		layer.img = img
		return layer, err
	case format == "":
		return layer, probeRawBacking(f)
	default:
		return layer, fmt.Errorf("backing format %q not supported", format)
	}
}

// probeRawBacking checks that go-qcow2reader's format probing reads a backing
// file without a declared format as raw (not as one of its stub formats).
func probeRawBacking(f *os.File) error {
	img, err := qcow2reader.Open(f) // no Close: it would close f
	if err != nil {
		return err
	}
	if t := img.Type(); t != raw.Type {
		return fmt.Errorf("backing format %q not supported", t)
	}
	return nil
}
