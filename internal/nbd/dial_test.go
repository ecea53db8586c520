package nbd

import (
	"bytes"
	"context"
	"net"
	"testing"
)

// TestClientCustomDial: a ClientOptions.Dial opens the transport (as the
// libvirt source does through an SSH tunnel) with the URL's network and
// address, and the client reads through it.
func TestClientCustomDial(t *testing.T) {
	ro, disk := sparseExport(t, "ro", false)
	_, network, addr := serveT(t, true, ServerOptions{}, ro)
	var gotNet, gotAddr string
	opts := ClientOptions{Dial: func(ctx context.Context, n, a string) (net.Conn, error) {
		gotNet, gotAddr = n, a
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	// The URL names a socket that does not exist here: only Dial knows the way.
	c := dialT(t, nbdURL("unix", "/nonexistent/far.sock", "ro"), opts)
	if gotNet != "unix" || gotAddr != "/nonexistent/far.sock" {
		t.Fatalf("Dial got %s %s", gotNet, gotAddr)
	}
	if got := readAllChunks(t, c, c.Size(), 1<<20); !bytes.Equal(got, disk.bytes()) {
		t.Fatal("content read through the custom dialer differs")
	}
}
