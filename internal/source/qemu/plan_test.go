package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/qmp"
	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestPlanBitmaps(t *testing.T) {
	bm := func(name string, inconsistent bool) qmp.DirtyBitmap {
		return qmp.DirtyBitmap{Name: name, Inconsistent: inconsistent}
	}
	tests := []struct {
		name      string
		have      []qmp.DirtyBitmap
		prev      string
		base      string
		stale     []string
		reasonHas string
	}{
		{"first backup", nil, "", "", nil, "no previous"},
		{"incremental", []qmp.DirtyBitmap{bm("hf-t-1", false)}, "hf-t-1", "hf-t-1", nil, ""},
		{"foreign bitmaps ignored", []qmp.DirtyBitmap{bm("libvirt-x", false), bm("hf-other-1", false), bm("hf-t-1", false)}, "hf-t-1", "hf-t-1", nil, ""},
		{"killed run left a new bitmap", []qmp.DirtyBitmap{bm("hf-t-1", false), bm("hf-t-2", false)}, "hf-t-1", "hf-t-1", []string{"hf-t-2"}, ""},
		{"bitmap gone", []qmp.DirtyBitmap{bm("hf-t-9", false)}, "hf-t-1", "", []string{"hf-t-9"}, "gone"},
		{"inconsistent after crash", []qmp.DirtyBitmap{bm("hf-t-1", true)}, "hf-t-1", "", []string{"hf-t-1"}, "inconsistent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planBitmaps("t", tc.have, tc.prev)
			if p.Base != tc.base || strings.Join(p.Stale, ",") != strings.Join(tc.stale, ",") {
				t.Fatalf("plan %+v, want base %q stale %v", p, tc.base, tc.stale)
			}
			if !strings.Contains(p.Reason, tc.reasonHas) || (tc.base != "") != (p.Reason == "") {
				t.Fatalf("reason %q, want it to contain %q", p.Reason, tc.reasonHas)
			}
			if !strings.HasPrefix(p.New, "hf-t-") || p.New == tc.prev {
				t.Fatalf("new bitmap %q", p.New)
			}
		})
	}
}

func TestChooseTransport(t *testing.T) {
	img := filepath.Join(t.TempDir(), "d.qcow2")
	_ = os.WriteFile(img, nil, 0o600)
	local := []vmDisk{{Device: "vda", File: img, Format: "qcow2"}}
	remote := []vmDisk{{Device: "vda", File: "json:{}", Format: "qcow2"}, {Device: "vdb", File: "/nonexistent", Format: "raw"}}
	tests := []struct {
		want  source.Transport
		tls   bool
		disks []vmDisk
		mode  source.Transport
		note  string
		fails bool
	}{
		{source.TransportAuto, false, local, source.TransportDirect, "direct: used", false},
		{source.TransportAuto, false, remote, source.TransportHotAdd, "not a local file", false},
		{source.TransportAuto, true, local, source.TransportNBD, "TLS", false},
		{source.TransportDirect, false, remote, "", "", true},
		{source.TransportHotAdd, false, remote, source.TransportHotAdd, "hotadd: used", false},
		{source.TransportNBD, false, local, source.TransportNBD, "nbd: used", false},
		{"san", false, local, "", "", true},
	}
	for _, tc := range tests {
		mode, note, err := chooseTransport(tc.want, tc.tls, tc.disks)
		if (err != nil) != tc.fails || mode != tc.mode || !strings.Contains(note, tc.note) {
			t.Errorf("%s tls=%v: %q %q %v", tc.want, tc.tls, mode, note, err)
		}
	}
}
