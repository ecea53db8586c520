package guestdisk

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzVolumes feeds arbitrary first sectors (MBR, GPT header and entries)
// to Volumes: it may refuse them, never panic, and every volume it returns
// lies within the disk.
func FuzzVolumes(f *testing.F) {
	f.Add(seedGPT())
	mbrDisk := make([]byte, 4096)
	mbrDisk[446+4] = 0x83
	binary.LittleEndian.PutUint32(mbrDisk[446+8:], 2)
	binary.LittleEndian.PutUint32(mbrDisk[446+12:], 4)
	mbrDisk[510], mbrDisk[511] = 0x55, 0xAA
	f.Add(mbrDisk)
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, head []byte) {
		const size = 1 << 20
		disk := make([]byte, size)
		copy(disk, head)
		vs, err := Volumes(bytes.NewReader(disk), size)
		if err != nil {
			return
		}
		for _, v := range vs {
			if v.Start < 0 || v.Size < 0 || v.Start+v.Size > size {
				t.Fatalf("volume %+v outside a disk of %d bytes", v, size)
			}
		}
	})
}

// seedGPT is a valid GPT disk head: protective MBR, header, one entry.
func seedGPT() []byte {
	b := make([]byte, 4*512)
	b[446+4] = 0xEE
	binary.LittleEndian.PutUint32(b[446+8:], 1)
	binary.LittleEndian.PutUint32(b[446+12:], 2047)
	b[510], b[511] = 0x55, 0xAA
	e := b[1024 : 1024+128]
	copy(e[0:16], []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4})
	e[16] = 1
	binary.LittleEndian.PutUint64(e[32:], 34)
	binary.LittleEndian.PutUint64(e[40:], 1000)
	h := b[512 : 512+92]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x00010000)
	binary.LittleEndian.PutUint32(h[12:], 92)
	binary.LittleEndian.PutUint64(h[24:], 1)
	binary.LittleEndian.PutUint64(h[32:], 2047)
	binary.LittleEndian.PutUint64(h[40:], 34)
	binary.LittleEndian.PutUint64(h[48:], 2014)
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], 4)
	binary.LittleEndian.PutUint32(h[84:], 128)
	binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(b[1024:1024+4*128]))
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
	return b
}
