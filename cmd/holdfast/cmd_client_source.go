package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/libvirtsrc"
	"github.com/holdfast-backup/holdfast/internal/server/vspheresrc"
	"github.com/spf13/cobra"
)

func newSourceCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "source", Short: "Sources the server backs up from (images, NBD endpoints, QEMU hosts, vCenter/ESXi, libvirt)", Args: noArgs}
	addClientFlags(c, o)
	c.AddCommand(newSourceAdd(a, o), newSourceList(a, o))
	return c
}

func newSourceAdd(a *app, o *clientOptions) *cobra.Command {
	var kind, address string
	var vf vsphereFlags
	var lf libvirtSourceFlags
	c := &cobra.Command{
		Use:   "add NAME --type image|nbd|qemu|vsphere|libvirt --address ADDR",
		Short: "Add a source: an image path, an NBD URL, a QMP socket directory / QEMU host, a vCenter/ESXi host or a libvirt daemon",
		Long: `Add a source jobs back up from or select VMs in (job create --vms-from).

A vSphere source is a vCenter or ESXi endpoint:

  holdfast source add vc1 --type vsphere --address vsphere://USER@HOST[:PORT] \
      --vsphere-password-file /etc/holdfast/vc1.password [--tls-thumbprint SHA256 | --vsphere-ca F | --insecure]

--vsphere-password-file is a path ON THE SERVER HOST (mode 0600): the server
stores the path, never the password, reads the file at each run and gives
the password to the proxy that backs up each VM. --vsphere-ca is read here
and stored with the source (a certificate is no secret).

A libvirt source is a libvirt daemon whose domains jobs select by name
glob or Holdfast metadata (job create --vms-from NAME='web*' or
--vms-from NAME=metadata:tier=gold; see docs/libvirt.md):

  holdfast source add kvm1 --type libvirt --address qemu:///system --proxy kvm1-proxy \
      [--list-address qemu+unix:///system?socket=PATH]

--address is the connection URI the proxy dials (qemu:///system,
qemu+unix:///system?socket=PATH, qemu+ssh://USER@HOST/system); --proxy the
proxy that runs the domains' backups, on the hypervisor host; the server
lists the domains at each run through --list-address (default --address).`,
		Args: exactArgs(1),
	}
	c.Flags().StringVar(&kind, "type", "", "source type: image, nbd, qemu, vsphere or libvirt (required)")
	c.Flags().StringVar(&address, "address", "", "image path, nbd:// URL, QMP socket directory / host, vsphere://USER@HOST[:PORT] or a libvirt URI (required)")
	vf.register(c.Flags())
	lf.register(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if address == "" {
			return usageError{fmt.Errorf("--address is required")}
		}
		var def json.RawMessage
		var err error
		if kind != libvirtsrc.Kind && lf != (libvirtSourceFlags{}) {
			return usageError{fmt.Errorf("--proxy and --list-address are for --type libvirt")}
		}
		switch kind {
		case "image", "nbd", "qemu":
			if vf != (vsphereFlags{}) {
				return usageError{fmt.Errorf("--vsphere-password-file, --tls-thumbprint, --vsphere-ca and --insecure are for --type vsphere")}
			}
			def, err = json.Marshal(apitypes.SourceAddress{Address: address})
		case vspheresrc.Kind:
			def, err = vf.sourceDefinition(address)
		case libvirtsrc.Kind:
			if vf != (vsphereFlags{}) {
				return usageError{fmt.Errorf("--vsphere-password-file, --tls-thumbprint, --vsphere-ca and --insecure are for --type vsphere")}
			}
			def, err = lf.sourceDefinition(address)
		default:
			return usageError{fmt.Errorf("--type %q: want image, nbd, qemu, vsphere or libvirt", kind)}
		}
		if err != nil {
			return err
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		req := apitypes.SourceRequest{Name: args[0], Kind: kind, Definition: def}
		var created apitypes.Source
		if err := cl.call(cmd.Context(), "POST", "/api/v1/sources", "add sources", req, &created); err != nil {
			return err
		}
		for _, w := range created.Warnings {
			fmt.Fprintf(a.stderr, "warning: %s\n", w)
		}
		_, err = fmt.Fprintf(a.stdout, "added source %s (%s %s)\n", args[0], kind, address)
		return err
	}
	return c
}

// sourceDefinition is the definition of a vSphere source (vspheresrc):
// the password file's path on the server host (not read here) and the
// trust settings, the CA certificate read from --vsphere-ca.
func (f vsphereFlags) sourceDefinition(address string) (json.RawMessage, error) {
	d := vspheresrc.Definition{Address: address, PasswordFile: f.passwordFile, Thumbprint: f.thumbprint, Insecure: f.insecure}
	if f.passwordFile == "" {
		return nil, usageError{errors.New("--vsphere-password-file is required: a file on the server host holding the password")}
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--vsphere-ca: %w", err)
		}
		d.CAPEM = string(pem)
	}
	if err := d.Check(); err != nil {
		return nil, usageError{err}
	}
	return json.Marshal(d)
}

func newSourceList(a *app, o *clientOptions) *cobra.Command {
	return newListCommand(a, o, listSpec[apitypes.Source]{
		short: "List sources", path: "/api/v1/sources", what: "list sources",
		header: []string{"NAME", "TYPE", "ADDRESS"},
		row: func(s apitypes.Source) []string {
			var addr apitypes.SourceAddress
			_ = json.Unmarshal(s.Definition, &addr)
			return []string{s.Name, s.Kind, orDash(addr.Address)}
		},
	})
}
