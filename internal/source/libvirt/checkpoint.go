package libvirt

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// checkpointPrefix starts the names of the checkpoints Holdfast creates
// for a repository.
func checkpointPrefix(tag string) string { return "holdfast-" + tag + "-" }

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String() // quotes too: the values go in attributes

}

// backupXML is a pull-mode backup of the disks: the NBD server on a unix
// socket, a scratch file per disk in dir, each export named by its target.
// A disk with a base is incremental from it and exports its changes as
// bitmap exportBitmap(target); when any disk has one, the others are
// explicitly full (per-disk backupmode, libvirt ≥ 7.6).
func backupXML(socket, dir string, disks []vmDisk, bases []diskBase) string {
	some := false
	for _, b := range bases {
		some = some || b.base != ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<domainbackup mode='pull'><server transport='unix' socket='%s'/><disks>", esc(socket))
	for i, d := range disks {
		mode := ""
		if i < len(bases) && bases[i].base != "" {
			mode = fmt.Sprintf(" backupmode='incremental' incremental='%s' exportbitmap='%s'", esc(bases[i].base), esc(exportBitmap(d.Target)))
		} else if some {
			mode = " backupmode='full'"
		}
		fmt.Fprintf(&b, "<disk name='%s' backup='yes' type='file' exportname='%s'%s><scratch file='%s'/></disk>",
			esc(d.Target), esc(d.Target), mode, esc(filepath.Join(dir, d.Target+".scratch")))
	}
	b.WriteString("</disks></domainbackup>")
	return b.String()
}

// checkpointXML is a checkpoint of the disks that can have one (qcow2).
func checkpointXML(name string, disks []vmDisk) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<domaincheckpoint><name>%s</name><disks>", esc(name))
	for _, d := range disks {
		cp := "no"
		if d.tracked() {
			cp = "bitmap"
		}
		fmt.Fprintf(&b, "<disk name='%s' checkpoint='%s'/>", esc(d.Target), cp)
	}
	b.WriteString("</disks></domaincheckpoint>")
	return b.String()
}

// checkpoints lists the names of the domain's checkpoints.
func (s *Session) checkpoints() ([]string, error) {
	cps, _, err := s.l.DomainListAllCheckpoints(s.dom, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("domain %s: list checkpoints: %w", s.o.Locator, err)
	}
	names := make([]string, 0, len(cps))
	for _, c := range cps {
		names = append(names, c.Name)
	}
	return names, nil
}

// endJob ends the backup job and waits until libvirt reports no job.
func (s *Session) endJob(ctx context.Context) error {
	err := s.l.DomainAbortJob(s.dom)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for {
		typ, _, _, _, _, _, _, _, _, _, _, _, jerr := s.l.DomainGetJobInfo(s.dom)
		if jerr != nil {
			return errors.Join(err, fmt.Errorf("domain %s: job info: %w", s.o.Locator, jerr))
		}
		if typ == 0 { // VIR_DOMAIN_JOB_NONE
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("domain %s: the backup job did not end: %w", s.o.Locator, ctx.Err()))
		case <-time.After(20 * time.Millisecond): // libvirt sends no event for the job's end on this connection
		}
	}
}

// settleCheckpoints keeps Holdfast's latest checkpoint: on success it
// deletes the older holdfast-<tag>-* ones, on failure the new one.
func (s *Session) settleCheckpoints(committed bool) error {
	names, err := s.checkpoints()
	if err != nil {
		return err
	}
	prefix := checkpointPrefix(s.o.Tag)
	var errs []error
	for _, n := range names {
		drop := n == s.Checkpoint
		if committed {
			drop = strings.HasPrefix(n, prefix) && n != s.Checkpoint
		}
		if !drop {
			continue
		}
		if err := s.l.DomainCheckpointDelete(golibvirt.DomainCheckpoint{Name: n, Dom: s.dom}, 0); err != nil {
			errs = append(errs, fmt.Errorf("domain %s: delete checkpoint %s: %w", s.o.Locator, n, err))
		}
	}
	return errors.Join(errs...)
}

// runDirMark is in the name of every session's run directory.
const runDirMark = "holdfast-libvirt-"

// cleanupLeftover ends the backup job of a killed Holdfast run: one whose
// NBD socket is in a Holdfast run directory. Its checkpoint stays, as a
// child of the previous one: an incremental from the previous checkpoint
// still covers its changes, and the next successful backup deletes it with
// the other older Holdfast checkpoints. A job of another tool is an error.
func (s *Session) cleanupLeftover(ctx context.Context) error {
	doc, err := s.l.DomainBackupGetXMLDesc(s.dom, 0)
	if err != nil {
		return nil // no backup job
	}
	var b struct {
		Server struct {
			Socket string `xml:"socket,attr"`
		} `xml:"server"`
	}
	if err := xml.Unmarshal([]byte(doc), &b); err != nil {
		return fmt.Errorf("domain %s: backup job XML: %w", s.o.Locator, err)
	}
	dir := filepath.Dir(b.Server.Socket)
	if !strings.HasPrefix(filepath.Base(dir), runDirMark) {
		return fmt.Errorf("domain %s: another backup job is running (not Holdfast's)", s.o.Locator)
	}
	s.o.Logger.Warn("ending the backup job of an interrupted run", "domain", s.o.Locator.Domain, "dir", dir)
	if err := s.endJob(ctx); err != nil {
		return err
	}
	_ = s.conn.RemoveAll(ctx, dir) // scratch files libvirt left (it removes its own on a clean end)
	s.Cleaned = append(s.Cleaned, "backup job of "+dir)
	return nil
}
