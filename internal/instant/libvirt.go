package instant

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// LibvirtOptions run a session's VM as a libvirt domain on its NBD exports
// (Options.Libvirt): defined and started once the exports answer,
// destroyed and undefined when the session ends, unless migrated.
type LibvirtOptions struct {
	URI string // libvirtconn.Dial's URI
	// Name names the domain; "": the point's VM name and the session ID.
	Name string
	// XML, if set, is the domain to start from instead of the one the
	// point recorded (config.domain_xml) or, without one, a minimal domain.
	XML string
	// KeepIdentity keeps the recorded UUID and MAC addresses; Network
	// keeps the network interfaces (see recoveryOptions).
	KeepIdentity, Network bool
	// VM gives memory, CPUs, accelerator and NIC models of a minimal
	// domain (zero: as the point recorded).
	VM VMOptions
}

// LibvirtRecord is a session's domain in libvirt.
type LibvirtRecord struct {
	URI    string `json:"uri"`
	Domain string `json:"domain"`
	UUID   string `json:"uuid"`
	// Targets are the domain's target devices of the point's disks, by
	// disk number; Dropped the recorded disks left out.
	Targets []string `json:"targets"`
	Dropped []string `json:"dropped,omitempty"`
	// MigratedTo are the local images the domain's disks were moved onto
	// (virDomainBlockCopy), by disk number: the domain is production's.
	MigratedTo []string `json:"migrated_to,omitempty"`
	// Removed: the session destroyed and undefined its domain.
	Removed bool `json:"removed,omitempty"`
}

// ErrDomainExists means the domain a session would define exists already.
var ErrDomainExists = errors.New("a libvirt domain of that name or UUID exists")

// startDomain defines and starts the session's domain on its VM socket and
// records it.
func (s *session) startDomain(ctx context.Context) error {
	lo := *s.o.Libvirt
	if s.vmSocket == "" {
		return errors.New("a libvirt domain needs the NBD exports (--nbd)")
	}
	name := lo.Name
	if name == "" {
		name = s.o.Point.VM + "-" + s.o.ID
	}
	xml := lo.XML
	if xml == "" && s.o.Point.Config != nil {
		xml = s.o.Point.Config.DomainXML
	}
	vm := lo.VM
	vm.FromPoint(s.o.Point.Notes)
	var err error
	if xml == "" {
		if xml, err = minimalDomain(name, len(s.disks), vm); err != nil {
			return err
		}
	}
	plan, err := libvirt.Rewrite(xml, recoveryOptions(lo, name, len(s.disks), s.vmSocket, s.o.RedoDir))
	if err != nil {
		return err
	}
	c, err := libvirtconn.Dial(ctx, lo.URI)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.DomainLookupByName(name); err == nil {
		return fmt.Errorf("%w: %s on %s", ErrDomainExists, name, c.URI())
	}
	if u, err := parseUUID(plan.UUID); err == nil {
		if dom, err := c.DomainLookupByUUID(u); err == nil {
			return fmt.Errorf("%w: UUID %s (%s) on %s: start without keeping the identity", ErrDomainExists, uuidString(u), dom.Name, c.URI())
		}
	}
	dom, err := c.DomainDefineXML(plan.XML)
	if err != nil {
		return fmt.Errorf("define domain %s on %s: %w", name, c.URI(), err)
	}
	if err := c.DomainCreate(dom); err != nil {
		_ = c.DomainUndefineFlags(dom, golibvirt.DomainUndefineNvram)
		return fmt.Errorf("start domain %s on %s: %w", name, c.URI(), err)
	}
	s.rec.Libvirt = &LibvirtRecord{URI: lo.URI, Domain: dom.Name, UUID: uuidString(dom.UUID), Targets: plan.Targets, Dropped: plan.Dropped}
	s.o.Logger.Info("libvirt domain started", "domain", dom.Name, "uri", c.URI())
	return nil
}

// stopDomain destroys and undefines the session's domain when the session
// ends — unless it was migrated — and records that it did.
func (s *session) stopDomain() {
	r := s.o.Registry
	if cur, err := r.Load(s.rec.ID); err == nil && cur.Migrated {
		return
	}
	if err := removeDomain(context.Background(), s.rec.Libvirt); err != nil {
		s.o.Logger.Error("remove the session's libvirt domain", "domain", s.rec.Libvirt.Domain, "error", err)
		return
	}
	_, _ = r.Update(s.rec.ID, func(rec *Record) {
		if rec.Libvirt != nil {
			rec.Libvirt.Removed = true
		}
	})
}

// removeDomain destroys and undefines the domain lr names: the one with
// its UUID, if it still has its name (another domain is left alone).
func removeDomain(ctx context.Context, lr *LibvirtRecord) error {
	c, dom, err := lookupDomain(ctx, lr)
	if errors.Is(err, ErrNoDomain) {
		return nil
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if st, _, err := c.DomainGetState(dom, 0); err == nil && golibvirt.DomainState(st) != golibvirt.DomainShutoff {
		if err := c.DomainDestroy(dom); err != nil && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("destroy domain %s: %w", lr.Domain, err)
		}
	}
	if err := c.DomainUndefineFlags(dom, golibvirt.DomainUndefineNvram|golibvirt.DomainUndefineManagedSave); err != nil &&
		!golibvirt.IsNotFound(err) {
		return fmt.Errorf("undefine domain %s: %w", lr.Domain, err)
	}
	return nil
}

// ErrNoDomain means the session's domain is gone (or renamed).
var ErrNoDomain = errors.New("the session's libvirt domain is gone")

// lookupDomain connects to lr's libvirt and finds its domain by UUID, with
// the name it was given.
func lookupDomain(ctx context.Context, lr *LibvirtRecord) (*libvirtconn.Conn, golibvirt.Domain, error) {
	u, err := parseUUID(lr.UUID)
	if err != nil {
		return nil, golibvirt.Domain{}, err
	}
	c, err := libvirtconn.Dial(ctx, lr.URI)
	if err != nil {
		return nil, golibvirt.Domain{}, err
	}
	dom, err := c.DomainLookupByUUID(u)
	if err == nil && dom.Name != lr.Domain {
		err = fmt.Errorf("UUID %s is domain %s now, not %s: %w", lr.UUID, dom.Name, lr.Domain, ErrNoDomain)
	} else if golibvirt.IsNotFound(err) {
		err = fmt.Errorf("%s (%s): %w", lr.Domain, lr.UUID, ErrNoDomain)
	}
	if err != nil {
		c.Close()
		return nil, dom, err
	}
	return c, dom, nil
}

// RemoveDomain removes the domain of a session whose serving process died
// without removing it (Record.Libvirt, not migrated), and records that.
func (r Registry) RemoveDomain(ctx context.Context, rec Record) (Record, error) {
	if rec.Libvirt == nil || rec.Libvirt.Removed || rec.Migrated || rec.State() == "serving" {
		return rec, nil
	}
	if err := removeDomain(ctx, rec.Libvirt); err != nil {
		return rec, err
	}
	return r.Update(rec.ID, func(x *Record) { x.Libvirt.Removed = true })
}

func uuidString(u golibvirt.UUID) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func parseUUID(s string) (golibvirt.UUID, error) {
	var u golibvirt.UUID
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != len(u) {
		return u, fmt.Errorf("libvirt UUID %q", s)
	}
	copy(u[:], b)
	return u, nil
}
