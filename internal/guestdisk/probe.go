package guestdisk

import (
	"bytes"
	"encoding/binary"
	"io"
)

// Content kinds Probe reports; "" is content it does not recognise.
const (
	ContentExt   = "ext4" // ext2, ext3 and ext4 (the ext4 driver reads all three)
	ContentXFS   = "xfs"
	ContentBtrfs = "btrfs"
	ContentSwap  = "swap"
	ContentLVM   = "LVM2_member"
)

// signature is a magic string at a fixed offset of a volume.
type signature struct {
	content string
	offset  int64
	magic   []byte
}

var signatures = [...]signature{
	{ContentXFS, 0, []byte("XFSB")},
	{ContentExt, 1024 + 56, []byte{0x53, 0xEF}},
	{ContentBtrfs, 0x10040, []byte("_BHRfS_M")},
	{ContentSwap, 4096 - 10, []byte("SWAPSPACE2")},
	{ContentSwap, 4096 - 10, []byte("SWAP-SPACE")},
}

// Probe names what a volume of size bytes holds from its signature: one of
// the Content constants, or "" when nothing is recognised. Read errors
// other than a short read at the end count as "not this signature".
func Probe(r io.ReaderAt, size int64) string {
	for _, s := range signatures {
		if s.offset+int64(len(s.magic)) > size {
			continue
		}
		b := make([]byte, len(s.magic))
		if n, err := r.ReadAt(b, s.offset); n == len(b) && (err == nil || err == io.EOF) && bytes.Equal(b, s.magic) {
			if s.content == ContentExt && !plausibleExt(r) {
				continue
			}
			return s.content
		}
	}
	if lvmLabel(r, size) {
		return ContentLVM
	}
	return ""
}

// plausibleExt checks more of an ext superblock than its two-byte magic:
// a block size of 1–64 KiB and a non-zero inode and block count.
func plausibleExt(r io.ReaderAt) bool {
	sb := make([]byte, 32)
	if n, _ := r.ReadAt(sb, 1024); n != len(sb) {
		return false
	}
	inodes := binary.LittleEndian.Uint32(sb[0:])
	blocks := binary.LittleEndian.Uint32(sb[4:])
	logBlock := binary.LittleEndian.Uint32(sb[24:])
	return inodes > 0 && blocks > 0 && logBlock <= 6
}

// lvmLabel looks for an LVM2 label ("LABELONE" … "LVM2 001") in the first
// four sectors, where pvcreate may put it.
func lvmLabel(r io.ReaderAt, size int64) bool {
	for sector := int64(0); sector < 4 && (sector+1)*512 <= size; sector++ {
		b := make([]byte, 32)
		if n, _ := r.ReadAt(b, sector*512); n != len(b) {
			return false
		}
		if bytes.Equal(b[0:8], []byte("LABELONE")) && bytes.Equal(b[24:32], []byte("LVM2 001")) {
			return true
		}
	}
	return false
}
