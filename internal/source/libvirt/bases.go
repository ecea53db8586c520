package libvirt

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// diskBase is where one disk's changes are read from: the checkpoint
// base, or "" and why the disk is read whole.
type diskBase struct{ base, reason string }

// chooseBase names the new checkpoint and picks, per disk, the previous
// checkpoint to read changes since: Holdfast's own, recorded by the
// previous point, still known to libvirt, and holding a bitmap of that
// very disk at the same index of the point. A disk added since (or one
// the checkpoint has no bitmap of) is read whole while the others stay
// incremental; the new checkpoint covers every qcow2 disk.
func (s *Session) chooseBase() error {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	s.bases = make([]diskBase, len(s.info.Disks))
	tracked := 0
	for i, d := range s.info.Disks {
		if d.tracked() {
			tracked++
		} else {
			s.bases[i].reason = "a " + d.Format + " disk: libvirt checkpoints need qcow2, so it is read whole"
		}
	}
	if tracked == 0 {
		s.BaseReason = "no qcow2 disk: libvirt checkpoints need qcow2"
		return nil
	}
	s.Checkpoint = checkpointPrefix(s.o.Tag) + hex.EncodeToString(b[:])
	prev, ok := commonPrevious(s.info.Disks, s.o.PreviousChangeIDs)
	if !ok {
		return s.allWhole("the previous restore point's disks were not taken at one checkpoint")
	}
	names, err := s.checkpoints()
	if err != nil {
		return err
	}
	base, reason := pickBase(prev, checkpointPrefix(s.o.Tag), names)
	if base == "" {
		return s.allWhole(reason)
	}
	doc, err := s.l.DomainCheckpointGetXMLDesc(golibvirt.DomainCheckpoint{Name: base, Dom: s.dom}, 0)
	if err != nil {
		return s.allWhole(fmt.Sprintf("checkpoint %s of the previous restore point cannot be read: %v", base, err))
	}
	cp, err := parseCheckpoint(doc)
	if err != nil {
		return s.allWhole(fmt.Sprintf("checkpoint %s of the previous restore point: %v", base, err))
	}
	for i, d := range s.info.Disks {
		if !d.tracked() {
			continue
		}
		p := ""
		if i < len(s.o.PreviousChangeIDs) {
			p = s.o.PreviousChangeIDs[i]
		}
		if why := cp.diskReason(i, d.Target, p); why != "" {
			s.bases[i].reason = why
			continue
		}
		s.bases[i].base, s.Base = base, base
	}
	if s.Base == "" {
		s.BaseReason = fmt.Sprintf("checkpoint %s covers none of the domain's disks at their place in the previous restore point", base)
	}
	return nil
}

// allWhole reads every disk whole for one reason.
func (s *Session) allWhole(reason string) error {
	s.BaseReason = reason
	for i, d := range s.info.Disks {
		if d.tracked() {
			s.bases[i].reason = reason
		}
	}
	return nil
}

// commonPrevious is the one checkpoint the previous point's qcow2 disks
// were taken at ("" when none had one); ok is false when they name
// different ones.
func commonPrevious(disks []vmDisk, prevIDs []string) (prev string, ok bool) {
	for i, d := range disks {
		if !d.tracked() || i >= len(prevIDs) || prevIDs[i] == "" {
			continue
		}
		if prev != "" && prevIDs[i] != prev {
			return "", false
		}
		prev = prevIDs[i]
	}
	return prev, true
}

// checkpointInfo is what a checkpoint's XML tells: the disks it has a
// bitmap of, and the backed-up disks of the domain at its time (the
// previous point's disks, in order), when libvirt recorded the domain.
type checkpointInfo struct {
	name    string
	bitmaps map[string]bool
	disks   []vmDisk
	domain  bool
}

// parseCheckpoint reads a checkpoint XML (virDomainCheckpointGetXMLDesc).
func parseCheckpoint(doc string) (checkpointInfo, error) {
	var x libvirtxml.DomainCheckpoint
	if err := x.Unmarshal(doc); err != nil {
		return checkpointInfo{}, fmt.Errorf("checkpoint XML: %w", err)
	}
	cp := checkpointInfo{name: x.Name, bitmaps: map[string]bool{}}
	if x.Disks != nil {
		for _, d := range x.Disks.Disks {
			if d.Checkpoint == "" || d.Checkpoint == "bitmap" {
				cp.bitmaps[d.Name] = true
			}
		}
	}
	if x.Domain != nil {
		doc, err := x.Domain.Marshal()
		if err != nil {
			return checkpointInfo{}, fmt.Errorf("checkpoint XML: domain: %w", err)
		}
		info, err := parseDomain(doc)
		if err != nil {
			return checkpointInfo{}, fmt.Errorf("checkpoint XML: %w", err)
		}
		cp.disks, cp.domain = info.Disks, true
	}
	return cp, nil
}

// diskReason says why disk index i (target) cannot be read incrementally
// from the checkpoint, "" when it can; prev is the change ID the previous
// point recorded for disk i.
func (cp checkpointInfo) diskReason(i int, target, prev string) string {
	switch {
	case !cp.bitmaps[target]:
		return fmt.Sprintf("checkpoint %s has no bitmap of disk %s (added to the domain since, or not checkpointed then), so it is read whole", cp.name, target)
	case prev != cp.name:
		return fmt.Sprintf("disk %s (disk %d) has no checkpoint in the previous restore point, so it is read whole", target, i)
	case cp.domain && (i >= len(cp.disks) || cp.disks[i].Target != target):
		return fmt.Sprintf("disk %s was not disk %d of the previous restore point (disks added, removed or reordered since), so it is read whole", target, i)
	}
	return ""
}
