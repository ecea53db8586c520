package fsmap

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// need skips the test when a tool is missing.
func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/setup installs it): %v", tool, err)
		}
	}
}

// sh runs a command and returns its standard output.
func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	need(t, name)
	var out, errb bytes.Buffer
	c := exec.Command(name, args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// randomTree writes files of the given sizes (random bytes) into a new
// directory and returns it.
func randomTree(t testing.TB, sizes ...int) string {
	t.Helper()
	dir := t.TempDir()
	for i, n := range sizes {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// emptyImage makes a sparse file of size bytes.
func emptyImage(t testing.TB, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return img
}

func openImage(t testing.TB, img string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

var freeLine = regexp.MustCompile(`(?m)^  Free blocks: (.*)$`)

// dumpe2fsFree returns the free byte ranges dumpe2fs lists for an ext
// image at byte offset base.
func dumpe2fsFree(t testing.TB, img string, base int64) []Range {
	t.Helper()
	hdr := sh(t, "dumpe2fs", "-h", img)
	m := regexp.MustCompile(`(?m)^Block size:\s+(\d+)`).FindStringSubmatch(hdr)
	if m == nil {
		t.Fatalf("no block size in dumpe2fs output:\n%s", hdr)
	}
	bs, _ := strconv.ParseInt(m[1], 10, 64)
	var rs []Range
	for _, l := range freeLine.FindAllStringSubmatch(sh(t, "dumpe2fs", img), -1) {
		for _, part := range strings.Split(l[1], ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			a, b, ok := strings.Cut(part, "-")
			if !ok {
				b = a
			}
			first, err1 := strconv.ParseInt(a, 10, 64)
			last, err2 := strconv.ParseInt(b, 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("dumpe2fs free list %q", l[1])
			}
			rs = append(rs, Range{Offset: base + first*bs, Length: (last - first + 1) * bs, Reason: ReasonFree})
		}
	}
	return normalize(rs, 1<<62)
}

func sum(rs []Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Length
	}
	return n
}

func execIn(t testing.TB, stdin *strings.Reader, name string, args ...string) *exec.Cmd {
	t.Helper()
	need(t, name)
	c := exec.Command(name, args...)
	c.Stdin = stdin
	return c
}
