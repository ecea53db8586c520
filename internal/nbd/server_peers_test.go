package nbd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sparseExport returns a 64 MiB in-memory export with data in testRegions
// and an Allocation reporting the zero blocks.
func sparseExport(t *testing.T, name string, writable bool) (Export, *memDisk) {
	_, want := makeImage(t, t.TempDir(), 64<<20, testRegions())
	disk := &memDisk{b: want}
	e := Export{Name: name, Description: "test " + name, Size: int64(len(want)), ReaderAt: disk,
		Allocation: disk.allocation}
	if writable {
		e.WriterAt = disk
		e.Allocation = nil
	}
	return e, disk
}

func TestServerNbdinfoMap(t *testing.T) {
	needBins(t, "nbdinfo")
	exp, disk := sparseExport(t, "disk", false)
	_, network, addr := serveT(t, false, ServerOptions{}, exp)
	out := run(t, "nbdinfo", "--map", "--json", nbdURL(network, addr, "disk"))
	var m []struct {
		Offset, Length int64
		Type           uint32
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got []Extent
	for _, e := range m {
		got = appendExtent(got, Extent{e.Offset, e.Length, e.Type})
	}
	want, _ := disk.allocation(context.Background(), 0, exp.Size)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("nbdinfo --map\n got %+v\nwant %+v", got, want)
	}
}

func TestServerNbdcopy(t *testing.T) {
	needBins(t, "nbdcopy")
	exp, disk := sparseExport(t, "disk", false)
	for _, unix := range []bool{false, true} {
		_, network, addr := serveT(t, unix, ServerOptions{}, exp)
		out := filepath.Join(t.TempDir(), "out.img")
		run(t, "nbdcopy", nbdURL(network, addr, "disk"), out)
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, disk.b) {
			t.Fatalf("nbdcopy over %s: copy differs (%v)", network, err)
		}
	}
}

func TestServerQemuImgCompare(t *testing.T) {
	needBins(t, "qemu-img")
	exp, disk := sparseExport(t, "disk", false)
	_, network, addr := serveT(t, false, ServerOptions{}, exp)
	file := filepath.Join(t.TempDir(), "ref.img")
	if err := os.WriteFile(file, disk.b, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", nbdURL(network, addr, "disk"), file)
	if _, err := disk.WriteAt([]byte{0xff}, 33<<20); err != nil { // one byte differs now
		t.Fatal(err)
	}
	err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", nbdURL(network, addr, "disk"), file).Run()
	if err == nil {
		t.Fatal("qemu-img compare did not notice a changed byte")
	}
}

func TestServerQemuIOWrite(t *testing.T) {
	needBins(t, "qemu-io")
	exp, disk := sparseExport(t, "rw", true)
	_, network, addr := serveT(t, false, ServerOptions{}, exp)
	out := run(t, "qemu-io", "-f", "raw", nbdURL(network, addr, "rw"),
		"-c", "write -P 0xab 1M 64k", "-c", "read -P 0xab 1M 64k", "-c", "write -z 2M 128k",
		"-c", "discard 3M 64k", "-c", "flush")
	if strings.Contains(string(out), "fail") || strings.Contains(string(out), "error") {
		t.Fatalf("qemu-io: %s", out)
	}
	b := disk.bytes()
	if !bytes.Equal(b[1<<20:1<<20+64<<10], bytes.Repeat([]byte{0xab}, 64<<10)) || !allZero(b[2<<20:2<<20+128<<10]) {
		t.Fatal("writes did not reach the backend")
	}
}

func TestServer4TiBNbdinfo(t *testing.T) {
	needBins(t, "nbdinfo")
	const size = 4 << 40
	exp := Export{Name: "big", Size: size, ReaderAt: zeroReader{},
		Allocation: func(_ context.Context, off, n int64) ([]Extent, error) {
			return []Extent{{off, n, StateHole | StateZero}}, nil
		}}
	_, network, addr := serveT(t, false, ServerOptions{}, exp)
	out := run(t, "nbdinfo", "--json", nbdURL(network, addr, "big"))
	var info struct {
		Exports []struct {
			Size int64  `json:"export-size"`
			Name string `json:"export-name"`
		}
	}
	if err := json.Unmarshal(out, &info); err != nil || len(info.Exports) != 1 || info.Exports[0].Size != size {
		t.Fatalf("nbdinfo: %v\n%s", err, out)
	}
	out = run(t, "nbdinfo", "--map", "--totals", nbdURL(network, addr, "big"))
	if !strings.Contains(string(out), "4398046511104") || !strings.Contains(string(out), "hole,zero") {
		t.Fatalf("nbdinfo --map --totals: %s", out)
	}
	c := dialT(t, nbdURL(network, addr, "big"), ClientOptions{})
	p := make([]byte, 1<<20)
	if n, err := c.ReadAt(p, size-1<<20); n != len(p) || err != nil || !allZero(p) {
		t.Fatalf("read at end of 4 TiB: %d %v", n, err)
	}
}

// zeroReader reads zeros everywhere.
type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}
