// Package guestdisk reads the layout of a guest's disk: its partition
// table (GPT or MBR, read with github.com/diskfs/go-diskfs) and what each
// volume holds, from the volume's own signature (ext2/3/4, xfs, btrfs,
// swap, LVM physical volume). It reads any io.ReaderAt — a restore point's
// disk through restorefs, an image file, a block device — and never writes.
//
// Every byte it parses was written by the guest, so nothing is trusted:
// a partition that reaches past the disk's end or overlaps the table is an
// error naming the partition, a damaged GPT (bad CRC, a protective MBR
// without a readable GPT) is an error, and a disk without any partition
// table is one volume spanning the whole disk. Parsers are fuzzed.
//
// Volumes are numbered as Linux numbers partition devices: the number is
// the partition's slot in its table (GPT entry or MBR primary slot, from
// 1), so volume 2 of disk 0 is what `partx -a` makes as /dev/loopNp2.
// Partition 0 is the whole disk.
//
// LVM: ReadPV reads a physical volume's label, PV header and the newest
// metadata text of its metadata areas (a bounded parser of LVM2's text
// format: 4 MiB of text, nesting, entry and segment counts limited), and
// maps each linear logical volume (every segment "striped" with one
// stripe) to byte ranges of its PVs; NewLVReader reads an LV across its
// segments. Other segment types (thin, RAID, striped over several PVs,
// snapshots) are listed with the reason they are not read.
package guestdisk
