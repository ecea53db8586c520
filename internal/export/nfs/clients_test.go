package nfs

import (
	"net/netip"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// TestClients: a client that holds its NFS connection open is listed
// however long it is idle; once it closed it, it is listed for the window
// after its last request, then forgotten — at once if its last call was
// UMNT. A client outside Allow is never listed.
func TestClients(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	srv := NewServer(Options{Clock: clk})
	exp, _, _ := testExport("/holdfast/x")
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r := serveT(t, srv)
	loop := netip.MustParseAddr("127.0.0.1")
	const window = 2 * time.Minute
	if got := srv.Clients(window); len(got) != 0 {
		t.Fatalf("clients before any: %+v", got)
	}

	mc := dialRPC(t, "tcp", r.mountPort())
	st, root := mc.mnt("/holdfast/x")
	if st != mnt3OK {
		t.Fatalf("mount: %d", st)
	}
	mounted := clk.Now()
	clk.Advance(time.Second)
	nc := dialRPC(t, "tcp", r.nfsPort())
	if st, _ := nc.lookup(root, "disk-0.img"); st != nfs3OK {
		t.Fatalf("lookup: %d", st)
	}
	want := Client{Addr: loop, Export: "/holdfast/x", Since: mounted, Last: clk.Now(), Connected: true, Mounted: true}
	if got := srv.Clients(window); len(got) != 1 || got[0] != want {
		t.Fatalf("clients %+v, want %+v", got, want)
	}
	clk.Advance(time.Hour) // idle, connection open: still a client
	if got := srv.Clients(window); len(got) != 1 || !got[0].Connected {
		t.Fatalf("idle connected client: %+v", got)
	}
	if st, _ := nc.lookup(root, "disk-0.img"); st != nfs3OK {
		t.Fatal("lookup")
	}
	nc.conn.Close()
	want.Connected, want.Last = false, clk.Now()
	waitClients(t, srv, window, func(c []Client) bool { return len(c) == 1 && c[0] == want })
	clk.Advance(window)
	if got := srv.Clients(window); len(got) != 1 {
		t.Fatalf("within the window: %+v", got)
	}
	clk.Advance(time.Second)
	if got := srv.Clients(window); len(got) != 0 {
		t.Fatalf("after the window: %+v", got)
	}

	// A client that unmounted and closed its connection is done at once;
	// while it holds a connection open it is still a client.
	nc = dialRPC(t, "tcp", r.nfsPort())
	if st, _ := nc.lookup(root, "disk-0.img"); st != nfs3OK {
		t.Fatal("lookup")
	}
	e := &encoder{}
	e.string("/holdfast/x")
	mc.ok(progMount, versMount, mountUmnt, e.b)
	if got := srv.Clients(window); len(got) != 1 || got[0].Mounted || !got[0].Connected {
		t.Fatalf("unmounted, connected: %+v", got)
	}
	nc.conn.Close()
	waitClients(t, srv, window, func(c []Client) bool { return len(c) == 0 })

	// Outside the allow list: refused, not a client.
	srv2 := NewServer(Options{Clock: clk, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err := srv2.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r2 := serveT(t, srv2)
	if st, _ := dialRPC(t, "tcp", r2.mountPort()).mnt("/holdfast/x"); st != mnt3ErrAcces {
		t.Fatalf("mount from outside the allow list: %d", st)
	}
	dialRPC(t, "tcp", r2.nfsPort()).nfsCall(nfsGetattr, fh(root))
	if got := srv2.Clients(window); len(got) != 0 {
		t.Errorf("refused client listed: %+v", got)
	}
}

// waitClients waits until srv's clients satisfy ok.
func waitClients(t *testing.T, srv *Server, window time.Duration, ok func([]Client) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for got := srv.Clients(window); !ok(got); got = srv.Clients(window) {
		if time.Now().After(deadline) {
			t.Fatalf("clients %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
