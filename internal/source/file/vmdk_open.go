package file

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// openDescriptor opens a VMDK text descriptor file and its extents. A
// detected descriptor (probed) may be a raw disk whose guest wrote one, so
// it must not name any file. It does not take ownership of f.
func openDescriptor(ctx context.Context, f io.ReaderAt, files VMDKFiles, path string, size int64, probed bool) (*disk, error) {
	text, err := io.ReadAll(io.NewSectionReader(f, 0, min(size, maxDescriptorSize)))
	if err != nil {
		return nil, fmt.Errorf("vmdk %s: read descriptor: %w", path, err)
	}
	desc, err := parseDescriptor(text)
	if err == nil {
		err = desc.checkNoParent()
	}
	if err == nil && len(desc.extents) == 0 {
		err = errors.New("descriptor lists no extents")
	}
	if err == nil && probed {
		err = desc.checkNoFiles()
	}
	if err != nil {
		return nil, fmt.Errorf("vmdk %s: %w", path, err)
	}
	d, err := openExtents(ctx, desc, files, path)
	if err != nil {
		return nil, fmt.Errorf("vmdk %s: %w", path, err)
	}
	return d, nil
}

// openExtents builds the disk of a descriptor, one part per extent.
func openExtents(ctx context.Context, desc *vmdkDescriptor, files VMDKFiles, path string) (*disk, error) {
	d := &disk{info: source.Info{Format: "vmdk-flat", Location: path}}
	for i, x := range desc.extents {
		if err := ctx.Err(); err != nil {
			_ = d.Close()
			return nil, err
		}
		if x.kind == "SPARSE" {
			d.info.Format = "vmdk-sparse"
		}
		if err := d.openExtent(ctx, files, x); err != nil {
			_ = d.Close()
			return nil, fmt.Errorf("extent %d (%s %q, createType %q): %w", i, x.kind, x.file, desc.createType, err)
		}
	}
	return d, nil
}

// openExtent opens one extent and appends it to the disk.
func (d *disk) openExtent(ctx context.Context, files VMDKFiles, x vmdkExtentLine) error {
	if x.access == "NOACCESS" {
		return errors.New("NOACCESS extent cannot be read")
	}
	length := x.sectors * sectorSize
	switch x.kind {
	case "ZERO":
		return d.addPart(length, zeroExtent{})
	case "FLAT", "VMFS":
		ext, err := d.openFlatExtent(ctx, files, x)
		if err != nil {
			return err
		}
		return d.addPart(length, ext)
	case "SPARSE":
		ext, err := d.openSparseExtentFile(ctx, files, x)
		if err != nil {
			return err
		}
		return d.addPart(length, ext)
	default:
		return fmt.Errorf("extent type %s not supported", x.kind)
	}
}

// openExtentFile opens an extent's file; d closes it with the disk.
func (d *disk) openExtentFile(ctx context.Context, files VMDKFiles, name string) (ExtentFile, error) {
	f, err := files.OpenFile(ctx, name)
	if err != nil {
		return nil, err // deliberately not source.ErrNotFound: the descriptor exists
	}
	d.closers = append(d.closers, f)
	return f, nil
}

func (d *disk) openFlatExtent(ctx context.Context, files VMDKFiles, x vmdkExtentLine) (extent, error) {
	f, err := d.openExtentFile(ctx, files, x.file)
	if err != nil {
		return nil, err
	}
	if need := (x.offset + x.sectors) * sectorSize; f.Size() < need {
		return nil, fmt.Errorf("%s has %d bytes, the extent needs %d", x.file, f.Size(), need)
	}
	return flatExtentOf(f, x.file, x.offset*sectorSize), nil
}

func (d *disk) openSparseExtentFile(ctx context.Context, files VMDKFiles, x vmdkExtentLine) (*sparseExtent, error) {
	f, err := d.openExtentFile(ctx, files, x.file)
	if err != nil {
		return nil, err
	}
	ext, embedded, err := openSparseExtent(f, x.file, f.Size())
	if err != nil {
		return nil, err
	}
	if embedded != nil {
		if err := embedded.checkNoParent(); err != nil {
			return nil, err
		}
	}
	if ext.capacity < x.sectors*sectorSize {
		return nil, fmt.Errorf("sparse extent capacity %d bytes smaller than the %d the descriptor lists", ext.capacity, x.sectors*sectorSize)
	}
	return ext, nil
}

// openMonolithicSparse opens a single-file sparse VMDK (monolithicSparse).
func openMonolithicSparse(f io.ReaderAt, path string, fileSize int64) (*disk, error) {
	ext, desc, err := openSparseExtent(f, path, fileSize)
	if err != nil {
		return nil, err
	}
	if desc != nil {
		if err := desc.checkNoParent(); err != nil {
			return nil, fmt.Errorf("vmdk %s: %w", path, err)
		}
	}
	return singlePartDisk("vmdk-sparse", path, ext.capacity, ext)
}
