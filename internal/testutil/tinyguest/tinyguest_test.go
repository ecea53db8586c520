package tinyguest

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBootLocalImage(t *testing.T) {
	start := time.Now()
	g := Build(t)
	t.Logf("guest: kernel %s, initrd %s (Build took %v)", g.Kernel, g.Initrd, time.Since(start).Round(time.Millisecond))

	img := filepath.Join(t.TempDir(), "disk.img")
	MakeDisk(t, img, 16<<20, "hello-from-holdfast")
	drive := "file=" + img + ",format=raw,if=virtio"

	for n := 1; n <= 2; n++ {
		console, took := Boot(t, g, 120*time.Second, "-drive", drive)
		if !strings.Contains(console, Done) || !strings.Contains(console, Marker+"hello-from-holdfast") {
			t.Fatalf("boot %d: no marker or %s; console:\n%s", n, Done, console)
		}
		if strings.Contains(console, Error) {
			t.Fatalf("boot %d: guest error; console:\n%s", n, console)
		}
		t.Logf("boot %d: %s after %v", n, Done, took.Round(time.Millisecond))
		var want strings.Builder
		for i := 1; i <= n; i++ {
			want.WriteString("boot " + string(rune('0'+i)) + "\n")
		}
		if got := ReadDiskFile(t, img, "boots"); got != want.String() {
			t.Fatalf("after boot %d: boots = %q, want %q", n, got, want.String())
		}
	}
}

func TestBootNoDiskFails(t *testing.T) {
	g := Build(t)
	console, took := Boot(t, g, 120*time.Second)
	if !strings.Contains(console, Failed) || !strings.Contains(console, Error+"no /dev/vda") {
		t.Fatalf("want %s with no disk; console:\n%s", Failed, console)
	}
	t.Logf("no disk: %s after %v", Failed, took.Round(time.Millisecond))
}
