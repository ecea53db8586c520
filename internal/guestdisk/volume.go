package guestdisk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// ErrPartitionTable is wrapped by every error about a damaged or hostile
// partition table.
var ErrPartitionTable = errors.New("damaged partition table")

// sectorSize is the logical sector size partition tables are read with.
const sectorSize = 512

// maxEntryBytes bounds a GPT partition entry array (the usual one is
// 128 × 128 bytes = 16 KiB): a header may ask for any size.
const maxEntryBytes = 1 << 20

// Volume is one partition of a disk, or the whole disk when it has no
// partition table.
type Volume struct {
	Partition int    `json:"partition"` // slot in the table, from 1; 0 for the whole disk
	Start     int64  `json:"start"`     // bytes from the disk's start
	Size      int64  `json:"size"`      // bytes
	Table     string `json:"table,omitempty"`
	Type      string `json:"type,omitempty"` // GPT type GUID or MBR type byte ("0x83")
	Name      string `json:"name,omitempty"` // GPT partition name
	Content   string `json:"content,omitempty"`
}

// Section returns the volume's bytes within the disk r.
func (v Volume) Section(r io.ReaderAt) *io.SectionReader {
	return io.NewSectionReader(r, v.Start, v.Size)
}

// Volumes reads the partition table of a disk of size bytes and probes
// each partition's content. A disk without a table is one volume
// (partition 0); a damaged table is an error wrapping ErrPartitionTable.
func Volumes(r io.ReaderAt, size int64) ([]Volume, error) {
	vs, err := partitions(r, size)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		vs[i].Content = Probe(vs[i].Section(r), vs[i].Size)
	}
	return vs, nil
}

func partitions(r io.ReaderAt, size int64) ([]Volume, error) {
	if size < 2*sectorSize {
		return []Volume{{Size: size}}, nil
	}
	sector := make([]byte, 2*sectorSize)
	if _, err := r.ReadAt(sector, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read partition table: %w", err)
	}
	if sector[510] != 0x55 || sector[511] != 0xAA {
		return []Volume{{Size: size}}, nil // no MBR signature: no table
	}
	if string(sector[sectorSize:sectorSize+8]) == "EFI PART" || protective(sector) {
		return gptVolumes(r, size, sector[sectorSize:])
	}
	return mbrVolumes(r, size)
}

// protective reports whether an MBR holds a GPT protective entry (0xEE).
func protective(mbrSector []byte) bool {
	for i := range 4 {
		if mbrSector[446+16*i+4] == 0xEE {
			return true
		}
	}
	return false
}

func gptVolumes(r io.ReaderAt, size int64, header []byte) ([]Volume, error) {
	if err := checkGPTHeader(r, size, header); err != nil {
		return nil, err
	}
	t, err := gpt.Read(readerFile(r, size), sectorSize, sectorSize)
	if err != nil {
		return nil, fmt.Errorf("%w: GPT: %v", ErrPartitionTable, err)
	}
	var vs []Volume
	for _, p := range t.Partitions {
		if p == nil || p.Type == gpt.Unused {
			continue
		}
		v := Volume{Partition: p.Index, Table: "gpt", Type: string(p.Type), Name: p.Name}
		if err := v.place(p.Start, p.End+1, size); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// checkGPTHeader bounds the entry arrays the primary and backup headers
// ask for before the library allocates them.
func checkGPTHeader(r io.ReaderAt, size int64, header []byte) error {
	check := func(h []byte, which string) error {
		if string(h[0:8]) != "EFI PART" {
			return nil
		}
		count, entry := binary.LittleEndian.Uint32(h[80:84]), binary.LittleEndian.Uint32(h[84:88])
		if entry != gpt.PartitionEntrySize || uint64(count)*uint64(entry) > maxEntryBytes {
			return fmt.Errorf("%w: %s GPT header asks for %d entries of %d bytes", ErrPartitionTable, which, count, entry)
		}
		return nil
	}
	if err := check(header, "primary"); err != nil {
		return err
	}
	backup := binary.LittleEndian.Uint64(header[32:40])
	if backup == 0 || backup > uint64(size/sectorSize) {
		return nil // gpt.Read reports an unreadable backup
	}
	h := make([]byte, 92)
	if n, _ := r.ReadAt(h, int64(backup)*sectorSize); n < len(h) {
		return nil
	}
	return check(h, "backup")
}

func mbrVolumes(r io.ReaderAt, size int64) ([]Volume, error) {
	t, err := mbr.Read(readerFile(r, size), sectorSize, sectorSize)
	if err != nil {
		return nil, fmt.Errorf("%w: MBR: %v", ErrPartitionTable, err)
	}
	var vs []Volume
	for i, p := range t.Partitions {
		if p == nil || p.Type == mbr.Empty || p.Size == 0 {
			continue
		}
		v := Volume{Partition: i + 1, Table: "mbr", Type: fmt.Sprintf("0x%02x", uint8(p.Type))}
		if err := v.place(uint64(p.Start), uint64(p.Start)+uint64(p.Size), size); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// place sets the volume's byte range from sectors [first, end) and checks
// that it lies within the disk, after the table's first sector.
func (v *Volume) place(first, end uint64, diskSize int64) error {
	sectors := uint64(diskSize) / sectorSize
	if first == 0 || end <= first || end > sectors {
		return fmt.Errorf("%w: partition %d spans sectors %d–%d of a disk of %d sectors", ErrPartitionTable, v.Partition, first, end, sectors)
	}
	v.Start, v.Size = int64(first)*sectorSize, int64(end-first)*sectorSize
	return nil
}

// file adapts an io.ReaderAt of a known size to the go-diskfs backend.File
// the table readers take.
type file struct {
	*io.SectionReader
}

func readerFile(r io.ReaderAt, size int64) file { return file{io.NewSectionReader(r, 0, size)} }

func (f file) Stat() (fs.FileInfo, error) { return fileInfo{size: f.Size()}, nil }
func (file) Close() error                 { return nil }

type fileInfo struct{ size int64 }

func (i fileInfo) Name() string       { return "disk" }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return 0o400 }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }
