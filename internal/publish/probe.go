package publish

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// probe is what blkid -p says of a device.
type probe struct {
	fstype string // TYPE: ext4, xfs, swap, LVM2_member …
	pttype string // PTTYPE: gpt, dos (a partition table)
}

// parseBlkid reads blkid -o export output (KEY=VALUE lines).
func parseBlkid(out []byte) probe {
	var p probe
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "TYPE":
			p.fstype = v
		case "PTTYPE":
			p.pttype = v
		}
	}
	return p
}

// blkid probes dev; nothing recognised is not an error.
func (s *Session) blkid(ctx context.Context, dev string) (probe, error) {
	out, err := s.sys.Run(ctx, "blkid", "-p", "-o", "export", dev)
	if exitCode(err) == 2 { // nothing found
		return probe{}, nil
	}
	if err != nil {
		return probe{}, err
	}
	return parseBlkid(out), nil
}

// partition is one entry of a partition table: its number and size.
type partition struct {
	nr   int
	size int64
}

// parsePartx reads partx -g -r -o NR,SECTORS output: "NR SECTORS" lines.
func parsePartx(out []byte) ([]partition, error) {
	var ps []partition
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("partx: unexpected line %q", line)
		}
		nr, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || nr <= 0 || size < 0 {
			return nil, fmt.Errorf("partx: unexpected line %q", line)
		}
		ps = append(ps, partition{nr, size})
	}
	return ps, nil
}

// findFilesystems adds disk d's partitions (or the disk itself) to
// Filesystems. A partition table partx cannot read is a problem, not an
// error: the disk is then probed as a whole.
func (s *Session) findFilesystems(ctx context.Context, d Disk) error {
	whole, err := s.blkid(ctx, d.Loop)
	if err != nil {
		s.problem("disk %d: %v", d.Index, err)
		return nil
	}
	if whole.pttype != "" {
		parts, err := s.addPartitions(ctx, d)
		if err == nil {
			for _, p := range parts {
				dev := d.Loop + "p" + strconv.Itoa(p.nr)
				fs := Filesystem{Name: fmt.Sprintf("disk%d-p%d", d.Index, p.nr), Disk: d.Index, Partition: p.nr, Device: dev, Size: p.size}
				s.addProbed(ctx, fs)
			}
			return nil
		}
		if isFatal(err) {
			return err
		}
		s.problem("disk %d: %s partition table: %v", d.Index, whole.pttype, err)
	}
	fs := Filesystem{Name: fmt.Sprintf("disk%d", d.Index), Disk: d.Index, Device: d.Loop, Size: d.Size, FSType: whole.fstype}
	s.Filesystems = append(s.Filesystems, fs)
	return nil
}

// addPartitions runs partx -a on the disk's loop device (recorded) and
// lists the partitions.
func (s *Session) addPartitions(ctx context.Context, d Disk) ([]partition, error) {
	out, err := s.sys.Run(ctx, "partx", "-g", "-r", "-o", "NR,SECTORS", d.Loop)
	if err != nil {
		return nil, err
	}
	parts, err := parsePartx(out)
	if err != nil || len(parts) == 0 {
		return nil, fmt.Errorf("no partitions found (%v)", err)
	}
	for i := range parts {
		parts[i].size *= 512
	}
	err = s.do(ctx, Step{Kind: stepPartitions, Path: d.File, Device: d.Loop}, func(*Step) error {
		// Partition devices partx added outlive a detach: a previous user
		// of this loop device may have left its own, at its table's
		// offsets, and partx -a would not replace them.
		if _, err := s.sys.Run(ctx, "partx", "-d", d.Loop); err != nil && !noPartitions(err) {
			return fmt.Errorf("remove the partition devices a previous user of %s left: %w", d.Loop, err)
		}
		_, err := s.sys.Run(ctx, "partx", "-a", d.Loop)
		return err
	})
	if err != nil {
		return nil, err
	}
	return parts, nil
}

// fatalError is an error that must stop Publish (a record that cannot be
// written), as opposed to a problem with the point's content.
type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

func isFatal(err error) bool {
	var fe fatalError
	return errors.As(err, &fe)
}

// addProbed probes a partition and adds it to Filesystems. A partition
// device that is not there is a problem (blkid would say "nothing
// found").
func (s *Session) addProbed(ctx context.Context, fs Filesystem) {
	if _, err := s.sys.DevNumber(fs.Device); err != nil {
		fs.Problem = err.Error()
		s.problem("%s: %v", fs.Name, err)
		s.Filesystems = append(s.Filesystems, fs)
		return
	}
	p, err := s.blkid(ctx, fs.Device)
	if err != nil {
		fs.Problem = err.Error()
		s.problem("%s: %v", fs.Name, err)
	}
	fs.FSType = p.fstype
	s.Filesystems = append(s.Filesystems, fs)
}

// problem notes something that could not be published.
func (s *Session) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.Problems = append(s.Problems, msg)
	s.log.Warn("publish: " + msg)
}
