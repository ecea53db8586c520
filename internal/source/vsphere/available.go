package vsphere

// Available returns the transports a host offers, in auto's order:
// direct when it sees datastores at local paths (paths: datastore name →
// directory), hotadd when it is itself the VM proxyVM of the inventory
// (found with the default device finder), and nbd always, with
// connections parallel reads per disk (<= 0: DefaultConnections).
func Available(paths map[string]string, proxyVM string, connections int) []Transport {
	if connections <= 0 {
		connections = DefaultConnections
	}
	var ts []Transport
	if len(paths) > 0 {
		ts = append(ts, NewDirect(paths))
	}
	if proxyVM != "" {
		ts = append(ts, NewHotAdd(proxyVM, nil))
	}
	return append(ts, NewNBD(connections))
}
