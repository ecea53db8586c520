package main

import (
	"encoding/json"

	"github.com/holdfast-backup/holdfast/internal/server/libvirtsrc"
	"github.com/spf13/pflag"
)

// libvirtSourceFlags are the flags of `source add --type libvirt`.
type libvirtSourceFlags struct {
	proxy       string
	listAddress string
}

func (f *libvirtSourceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.proxy, "proxy", "", "libvirt: the proxy that backs up the domains (the one on the hypervisor host; default: any that reaches libvirt://)")
	fs.StringVar(&f.listAddress, "list-address", "", "libvirt: the connection URI the server lists the domains with (default: --address)")
}

// sourceDefinition is the definition of a libvirt source (libvirtsrc).
func (f libvirtSourceFlags) sourceDefinition(address string) (json.RawMessage, error) {
	d := libvirtsrc.Definition{Address: address, Proxy: f.proxy, ListAddress: f.listAddress}
	if err := d.Check(); err != nil {
		return nil, usageError{err}
	}
	return json.Marshal(d)
}
