package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/spf13/pflag"
)

// libvirtIROptions are the flags of instant-recovery start and serve that
// run the VM as a libvirt domain on the session's exports.
type libvirtIROptions struct {
	enabled               bool
	uri, xmlFile          string
	network, keepIdentity bool
}

func (o *libvirtIROptions) register(f *pflag.FlagSet) {
	f.BoolVar(&o.enabled, "libvirt", false, "define and start a libvirt domain on the exports (the point's domain XML, else a minimal domain); stop removes it unless migrated")
	f.StringVar(&o.uri, "libvirt-uri", libvirtconn.DefaultURI, "--libvirt: connection URI (qemu:///system, qemu+unix:///system?socket=PATH)")
	f.StringVar(&o.xmlFile, "libvirt-xml", "", "--libvirt: domain XML to start from instead of the point's (its disks become the exports)")
	f.BoolVar(&o.network, "libvirt-network", false, "--libvirt: keep the domain's network interfaces (default: removed, the recovered VM stays off the network)")
	f.BoolVar(&o.keepIdentity, "libvirt-keep-identity", false, "--libvirt: keep the recorded UUID and MAC addresses (default: libvirt makes new ones)")
}

// check validates --libvirt against the other flags of start.
func (o *libvirtIROptions) check(io *instantOptions) error {
	switch {
	case !o.enabled:
		return nil
	case io.startQEMU || io.esxi.target != "":
		return usageError{errors.New("--libvirt, --start-qemu and --vsphere exclude each other")}
	case io.nbd == "":
		return usageError{errors.New("--libvirt needs the NBD exports (--nbd)")}
	}
	if _, err := libvirtconn.Socket(o.uri); err != nil {
		return usageError{fmt.Errorf("--libvirt-uri: %w", err)}
	}
	if libvirtconn.Remote(o.uri) {
		return usageError{fmt.Errorf("--libvirt-uri %s: the domain reads the exports on this host's unix socket, so the daemon must be the local one", libvirtconn.Redact(o.uri))}
	}
	if o.xmlFile != "" {
		abs, err := filepath.Abs(o.xmlFile)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return usageError{fmt.Errorf("--libvirt-xml: %w", err)}
		}
		o.xmlFile = abs
	}
	return nil
}

// args are the flags that pass o (and the minimal domain's --qemu-*
// sizes) on to the serving process.
func (o *libvirtIROptions) args(io instantOptions) []string {
	if !o.enabled {
		return nil
	}
	args := []string{"--libvirt", "--libvirt-uri", o.uri, "--qemu-memory", strconv.Itoa(io.qemuMemory),
		"--qemu-cpus", strconv.Itoa(io.qemuCPUs), "--qemu-accel", io.qemuAccel}
	if o.xmlFile != "" {
		args = append(args, "--libvirt-xml", o.xmlFile)
	}
	if o.network {
		args = append(args, "--libvirt-network")
	}
	if o.keepIdentity {
		args = append(args, "--libvirt-keep-identity")
	}
	return args
}

// options are the serving process's instant.LibvirtOptions (nil without
// --libvirt); the minimal domain takes the --qemu-* sizes.
func (o *libvirtIROptions) options(io instantOptions) (*instant.LibvirtOptions, error) {
	if !o.enabled {
		return nil, nil
	}
	lo := &instant.LibvirtOptions{URI: o.uri, Name: io.vmName, KeepIdentity: o.keepIdentity, Network: o.network,
		VM: instant.VMOptions{Memory: io.qemuMemory, CPUs: io.qemuCPUs, Accel: io.qemuAccel}}
	if o.xmlFile != "" {
		b, err := os.ReadFile(o.xmlFile)
		if err != nil {
			return nil, fmt.Errorf("--libvirt-xml: %w", err)
		}
		lo.XML = string(b)
	}
	return lo, nil
}

// printLibvirt says which libvirt domain a session runs.
func (a *app) printLibvirt(rec instant.Record) {
	lr := rec.Libvirt
	if lr == nil {
		return
	}
	state := "defined by the session"
	switch {
	case rec.Migrated:
		state = "migrated to " + strings.Join(lr.MigratedTo, ", ") + ": production's now"
	case lr.Removed:
		state = "destroyed and undefined"
	}
	fmt.Fprintf(a.stdout, "libvirt: domain %s (%s) on %s, %s; disks %s\n", lr.Domain, lr.UUID, libvirtconn.Redact(lr.URI), state,
		strings.Join(lr.Targets, ", "))
	if len(lr.Dropped) > 0 {
		fmt.Fprintf(a.stdout, "libvirt: recorded disks left out (not in the point): %s\n", strings.Join(lr.Dropped, ", "))
	}
}

// runMode says what runs the session's VM: "libvirt", "qemu", "esxi" or "".
func runMode(rec instant.Record) string {
	switch {
	case rec.Libvirt != nil:
		return "libvirt"
	case rec.ESXi != nil:
		return "esxi"
	case rec.QEMU > 0:
		return "qemu"
	}
	return ""
}

// liveVM names a live-migrated session's VM: its libvirt domain or QEMU's
// PID.
func liveVM(rec instant.Record) string {
	if rec.Libvirt != nil {
		return "libvirt domain " + rec.Libvirt.Domain
	}
	return fmt.Sprintf("VM (pid %d)", rec.QEMU)
}

// libvirtTargets turns migrate's --to into one image per disk of a libvirt
// session: a single existing directory DIR gives DIR/DOMAIN-TARGET.qcow2.
func libvirtTargets(rec instant.Record, to []string) []string {
	if rec.Libvirt == nil || len(to) != 1 {
		return to
	}
	if st, err := os.Stat(to[0]); err != nil || !st.IsDir() {
		return to
	}
	out := make([]string, len(rec.Libvirt.Targets))
	for i, dev := range rec.Libvirt.Targets {
		out[i] = filepath.Join(to[0], rec.Libvirt.Domain+"-"+dev+".qcow2")
	}
	return out
}

// removeLostDomain removes the domain of a session whose serving process
// died without removing it.
func removeLostDomain(ctx context.Context, a *app, reg instant.Registry, rec instant.Record) (instant.Record, error) {
	was := rec.Libvirt != nil && !rec.Libvirt.Removed
	rec, err := reg.RemoveDomain(ctx, rec)
	if err != nil {
		return rec, fmt.Errorf("session %s: %w", rec.ID, err)
	}
	if was && rec.Libvirt.Removed {
		fmt.Fprintf(a.stdout, "libvirt domain %s destroyed and undefined\n", rec.Libvirt.Domain)
	}
	return rec, nil
}
