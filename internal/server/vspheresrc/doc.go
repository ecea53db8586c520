// Package vspheresrc is a vSphere source of the backup server: what
// `holdfast source add NAME --type vsphere` stores in the configuration
// database, and what the server does with it when a job's session starts.
//
// The stored definition (a JSON object) holds no password:
//
//	{"address": "vsphere://backup@vsphere.local@vc1.example.com",
//	 "password_file": "/etc/holdfast/vc1.password",
//	 "tls_thumbprint": "AB:CD:…", "ca_pem": "-----BEGIN CERTIFICATE-----…", "insecure": false}
//
// password_file is a path on the server host (mode 0600 expected: a file
// others may read is accepted with a warning). The server reads it each
// time it resolves a job's selection from the source, and hands the
// password, with the trust settings, to the proxy that runs each VM's task
// inside the task (taskproto.VSphere), over the mutual-TLS task channel.
// The password is never stored in the database, returned by the API or
// logged. At most one of tls_thumbprint, ca_pem and insecure is set;
// none verifies the endpoint against the system's roots.
package vspheresrc
