package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

func TestSelection(t *testing.T) {
	clock := newFakeClock(time.Now())
	or, store := newTestOrchestrator(t, clock)
	ctx := context.Background()
	dir := t.TempDir()
	for _, f := range []string{"web-1.img", "web-2-disk1.qcow2", "web-2-disk0.qcow2", "db.vmdk", "notes.txt", "web-3.raw"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.img"), 0o700); err != nil {
		t.Fatal(err)
	}
	// An NBD server with two exports.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := nbd.NewServer(nbd.ServerOptions{},
		nbd.Export{Name: "web-9", Size: 512, ReaderAt: bytes.NewReader(make([]byte, 512))},
		nbd.Export{Name: "mail", Size: 512, ReaderAt: bytes.NewReader(make([]byte, 512))})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	go func() { _ = srv.Serve(sctx, ln) }()
	t.Cleanup(stop)
	nbdAddr := "nbd://" + ln.Addr().String()
	for name, src := range map[string]configdb.Source{
		"images":  {Name: "images", Kind: "image", Definition: json.RawMessage(`{"address":"` + dir + `"}`)},
		"exports": {Name: "exports", Kind: "nbd", Definition: json.RawMessage(`{"address":"` + nbdAddr + `"}`)},
		"vms":     {Name: "vms", Kind: "qemu", Definition: json.RawMessage(`{"address":"/run/vms"}`)},
	} {
		if _, err := store.CreateSource(ctx, src); err != nil {
			t.Fatal(name, err)
		}
	}
	tests := []struct {
		sel  string
		want map[string][]string // VM → disks
		err  string
	}{
		{`[{"source":"images","pattern":"web-*"}]`, map[string][]string{
			"keep":  {"/explicit.img"},
			"web-1": {dir + "/web-1.img"},
			"web-2": {dir + "/web-2-disk0.qcow2", dir + "/web-2-disk1.qcow2"},
			"web-3": {dir + "/web-3.raw"}}, ""},
		{`[{"source":"images"},{"source":"exports","pattern":"web-*"}]`, map[string][]string{
			"keep":  {"/explicit.img"},
			"db":    {dir + "/db.vmdk"},
			"web-1": {dir + "/web-1.img"},
			"web-2": {dir + "/web-2-disk0.qcow2", dir + "/web-2-disk1.qcow2"},
			"web-3": {dir + "/web-3.raw"},
			"web-9": {nbdAddr + "/web-9"}}, ""},
		{`[{"source":"images","pattern":"keep"}]`, map[string][]string{"keep": {"/explicit.img"}}, ""},
		{`[{"source":"vms"}]`, nil, "not supported yet"},
		{`[{"source":"nope"}]`, nil, "not found"},
		{`[{"source":"images","pattern":"["}]`, nil, "pattern"},
	}
	for _, tc := range tests {
		def, err := parseDefinition(json.RawMessage(`{"repository":"r","vms":[{"name":"keep","disks":["/explicit.img"]}],"select":` + tc.sel + `}`))
		if err == nil {
			_, err = or.resolveSelection(ctx, &def)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.sel, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.sel, err)
		}
		got := map[string][]string{}
		for _, vm := range def.VMs {
			got[vm.Name] = vm.Disks
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.sel, got, tc.want)
		}
	}
}
