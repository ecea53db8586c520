package tinyguest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Environment variables read by this package.
const (
	// EnvRequire makes unavailable tools or downloads fail the test instead
	// of skipping it (CI=true does the same).
	EnvRequire = "HOLDFAST_REQUIRE_TINYGUEST"
	// EnvCache overrides the cache root (default /var/tmp/holdfast-tinyguest).
	EnvCache = "HOLDFAST_TINYGUEST_CACHE"
	// EnvKernelPackage names the kernel package to use instead of the one
	// linux-image-cloud-amd64 depends on, e.g. linux-image-6.1.0-56-cloud-amd64.
	EnvKernelPackage = "HOLDFAST_TINYGUEST_KERNEL_PACKAGE"
)

// Console markers printed by the guest's /init.
const (
	Init   = "HOLDFAST-INIT"
	Marker = "HOLDFAST-MARKER: "
	Done   = "HOLDFAST-DONE"
	Failed = "HOLDFAST-FAILED"
	Error  = "HOLDFAST-ERROR: "
	// With holdfast.agent on the kernel command line the guest keeps /dev/vda
	// mounted after the boot line and answers guest agent commands instead
	// of powering off: Agent when it listens, Frozen and Thawed around a
	// freeze of /dev/vda.
	Agent  = "HOLDFAST-AGENT"
	Frozen = "HOLDFAST-FROZEN"
	Thawed = "HOLDFAST-THAWED"
)

// DefaultCacheRoot is where Build keeps kernels and initrds between runs.
const DefaultCacheRoot = "/var/tmp/holdfast-tinyguest"

// recipe changes whenever the way the initrd is built changes, so that old
// cache entries are not reused.
const recipe = "r4"

const metaPackage = "linux-image-cloud-amd64"

// modules are loaded in this order (their dependencies first, if any are
// missing from the list); built-in ones are skipped.
var modules = []string{
	"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
	"virtio_pci", "virtio_blk", "virtio_console",
	"crc16", "mbcache", "jbd2", "ext4",
}

const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /mnt /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo HOLDFAST-INIT
fail() {
	echo "HOLDFAST-ERROR: $*"
	echo HOLDFAST-FAILED
	poweroff -f
	sleep 60
}
# agent answers the QEMU guest agent commands libvirt sends to freeze and
# thaw /mnt, on the org.qemu.guest_agent.0 port, until the guest is killed.
agent() {
	p=""
	i=0
	while [ -z "$p" ]; do
		for n in /sys/class/virtio-ports/*; do
			[ "$(cat $n/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && p=/dev/${n##*/}
		done
		i=$((i+1))
		[ $i -gt 50 ] && fail "no guest agent port"
		[ -z "$p" ] && sleep 0.1
	done
	reply() {
		if fsfreeze $1 /mnt; then
			echo $2
			echo '{"return": 1}' >&3
		else
			echo '{"error": {"class": "GenericError", "desc": "fsfreeze failed"}}' >&3
		fi
	}
	exec 3<>$p
	echo HOLDFAST-AGENT
	# A read before the host side is open, or after it closed, returns
	# end-of-file at once: wait and read again.
	while true; do
		line=""
		read -r line <&3 || [ -n "$line" ] || { sleep 0.2; continue; }
		id=$(echo "$line" | sed -n 's/.*"id" *: *\([0-9]*\).*/\1/p')
		case "$line" in
		*guest-sync*) echo "{\"return\": $id}" >&3 ;;
		*guest-ping*) echo '{"return": {}}' >&3 ;;
		*guest-fsfreeze-freeze*) reply --freeze HOLDFAST-FROZEN ;;
		*guest-fsfreeze-thaw*) reply --unfreeze HOLDFAST-THAWED ;;
		*) echo '{"error": {"class": "CommandNotFound", "desc": "not answered by the tiny guest"}}' >&3 ;;
		esac
	done
}
for m in $(cat /modules.list); do
	insmod /lib/modules/$m.ko || fail "insmod $m"
done
i=0
while [ ! -b /dev/vda ]; do
	i=$((i+1))
	[ $i -gt 30 ] && fail "no /dev/vda"
	sleep 0.1
done
mount -t ext4 -o rw /dev/vda /mnt || fail "mount /dev/vda"
echo "HOLDFAST-MARKER: $(cat /mnt/marker)"
n=1
[ -f /mnt/boots ] && n=$(($(wc -l < /mnt/boots) + 1))
echo "boot $n" >> /mnt/boots || fail "append boots"
echo "HOLDFAST-BOOT: $n"
sync
grep -q holdfast.agent /proc/cmdline && agent
umount /mnt || fail "umount /dev/vda"
sync
echo HOLDFAST-DONE
poweroff -f
sleep 60
`

// Guest is a bootable kernel and initrd (absolute paths).
type Guest struct{ Kernel, Initrd string }

var (
	builtMu sync.Mutex
	built   = map[string]Guest{}
)

func required() bool {
	return os.Getenv("CI") == "true" || os.Getenv(EnvRequire) != ""
}

// unavailable skips t, or fails it when required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "tinyguest: " + fmt.Sprintf(format, args...)
	if required() {
		t.Fatalf("%s (required: CI=true or %s set)", msg, EnvRequire)
	}
	t.Skip(msg)
}

func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not found: %v", tool, err)
		}
	}
}

func cacheRoot() string {
	if r := os.Getenv(EnvCache); r != "" {
		return r
	}
	return DefaultCacheRoot
}

// Build returns the guest's kernel and initrd, building them once per
// machine into the cache (see the package documentation).
func Build(t testing.TB) Guest {
	t.Helper()
	root := cacheRoot()
	kpkg, kver, bver, err := resolve()
	if err != nil {
		// No package lists (or no apt): reuse what an earlier run built.
		if g, ok := newestCached(root); ok {
			t.Logf("tinyguest: %v; using cached %s", err, filepath.Dir(g.Kernel))
			return g
		}
		unavailable(t, "cannot resolve packages with apt-cache: %v", err)
	}
	key := cacheKey(kpkg, kver, bver)
	builtMu.Lock()
	defer builtMu.Unlock()
	if g, ok := built[key]; ok {
		return g
	}
	dir := filepath.Join(root, key)
	g := Guest{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.gz")}
	if !complete(dir) {
		if err := os.MkdirAll(root, 0o755); err != nil {
			unavailable(t, "cache: %v", err)
		}
		unlock, err := lockFile(filepath.Join(root, ".lock"))
		if err != nil {
			unavailable(t, "cache lock: %v", err)
		}
		defer unlock()
		if !complete(dir) { // another process may have built it meanwhile
			start := clock.Real().Now()
			if err := build(root, dir, kpkg, kver, bver); err != nil {
				var u unavailableError
				if errors.As(err, &u) {
					unavailable(t, "%v", err)
				}
				t.Fatalf("tinyguest: build: %v", err)
			}
			t.Logf("tinyguest: built %s in %v", dir, clock.Real().Since(start).Round(time.Millisecond))
		}
	}
	built[key] = g
	return g
}

type unavailableError struct{ error }

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "complete"))
	return err == nil
}

func newestCached(root string) (Guest, bool) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return Guest{}, false
	}
	var best string
	var bestTime time.Time
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || !strings.HasPrefix(e.Name(), recipe+"_") {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, "complete"))
		if err != nil {
			continue
		}
		if best == "" || fi.ModTime().After(bestTime) {
			best, bestTime = dir, fi.ModTime()
		}
	}
	if best == "" {
		return Guest{}, false
	}
	return Guest{Kernel: filepath.Join(best, "vmlinuz"), Initrd: filepath.Join(best, "initrd.gz")}, true
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func cacheKey(kpkg, kver, bver string) string {
	h := sha256.New()
	h.Write([]byte(initScript))
	h.Write([]byte(strings.Join(modules, " ")))
	sum := hex.EncodeToString(h.Sum(nil))[:10]
	return unsafeChars.ReplaceAllString(
		fmt.Sprintf("%s_%s_%s_busybox_%s_%s", recipe, kpkg, kver, bver, sum), "_")
}

var (
	resolveOnce sync.Once
	resolved    [3]string
	resolveErr  error
)

// resolve finds the kernel package, its version and busybox-static's
// version from the apt package lists, once per process.
func resolve() (kpkg, kver, bver string, err error) {
	resolveOnce.Do(func() {
		var r [3]string
		r[0], r[1], r[2], resolveErr = resolveApt()
		resolved = r
	})
	return resolved[0], resolved[1], resolved[2], resolveErr
}

func resolveApt() (kpkg, kver, bver string, err error) {
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return "", "", "", err
	}
	kpkg = os.Getenv(EnvKernelPackage)
	pkgs := []string{"busybox-static", metaPackage}
	if kpkg != "" {
		pkgs[1] = kpkg
	}
	recs, err := aptShow(pkgs...)
	if err != nil {
		return "", "", "", err
	}
	bver = recs["busybox-static"]["Version"]
	if kpkg != "" {
		kver = recs[kpkg]["Version"]
	} else {
		// Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
		dep := recs[metaPackage]["Depends"]
		m := regexp.MustCompile(`(linux-image-[^ ,]+-cloud-amd64) \(= ([^ )]+)\)`).FindStringSubmatch(dep)
		if m == nil {
			return "", "", "", fmt.Errorf("%s: no kernel in Depends %q", metaPackage, dep)
		}
		kpkg, kver = m[1], m[2]
	}
	if kver == "" || bver == "" {
		return "", "", "", fmt.Errorf("apt-cache: no versions for %s or busybox-static", kpkg)
	}
	return kpkg, kver, bver, nil
}

// aptShow returns the fields of the candidate version of each package.
func aptShow(pkgs ...string) (map[string]map[string]string, error) {
	args := append([]string{"show", "--no-all-versions"}, pkgs...)
	out, err := exec.Command("apt-cache", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("apt-cache show %s: %v: %s", strings.Join(pkgs, " "), err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("apt-cache show %s: %v", strings.Join(pkgs, " "), err)
	}
	recs := map[string]map[string]string{}
	for _, rec := range strings.Split(string(out), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(rec, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				fields[k] = v
			}
		}
		if name := fields["Package"]; name != "" && recs[name] == nil {
			recs[name] = fields
		}
	}
	for _, p := range pkgs {
		if recs[p]["Version"] == "" {
			return nil, fmt.Errorf("apt-cache show %s: no candidate", p)
		}
	}
	return recs, nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func run(dir string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// build downloads, unpacks and assembles the guest into dir, atomically.
func build(root, dir, kpkg, kver, bver string) error {
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return unavailableError{err}
		}
	}
	work, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// _apt cannot write into a root-owned 0700 temp dir: let it, and keep
	// apt from warning about it.
	_ = os.Chmod(work, 0o755)
	if err := run(work, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
		kpkg+"="+kver, "busybox-static="+bver); err != nil {
		return unavailableError{err}
	}
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) != 2 {
		return fmt.Errorf("apt-get download: got %v", debs)
	}
	tree := filepath.Join(work, "tree")
	for _, deb := range debs {
		if err := run(work, "dpkg-deb", "-x", deb, tree); err != nil {
			return err
		}
	}
	kernels, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	moddirs, _ := filepath.Glob(filepath.Join(tree, "lib", "modules", "*"))
	if len(kernels) != 1 || len(moddirs) != 1 {
		return fmt.Errorf("%s: want one kernel and one module dir, got %v %v", kpkg, kernels, moddirs)
	}
	busybox, err := os.ReadFile(filepath.Join(tree, "bin", "busybox"))
	if err != nil {
		return err
	}
	mods, order, err := loadModules(moddirs[0], modules)
	if err != nil {
		return err
	}

	var cpio bytes.Buffer
	w := newCPIO(&cpio)
	for _, d := range []string{"bin", "dev", "lib", "lib/modules", "mnt", "proc", "sys", "sbin"} {
		w.dir(d)
	}
	w.node("dev/console", syscall.S_IFCHR|0o600, 5, 1)
	w.file("bin/busybox", 0o755, busybox)
	w.file("init", 0o755, []byte(initScript))
	w.file("modules.list", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	for _, name := range order {
		w.file("lib/modules/"+name+".ko", 0o644, mods[name])
	}
	if err := w.close(); err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	_, _ = zw.Write(cpio.Bytes())
	if err := zw.Close(); err != nil {
		return err
	}

	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	kernel, err := os.ReadFile(kernels[0])
	if err != nil {
		return err
	}
	info := fmt.Sprintf("kernel package: %s %s\nbusybox-static: %s\nmodules: %s\n", kpkg, kver, bver, strings.Join(order, " "))
	for name, data := range map[string][]byte{
		"vmlinuz": kernel, "initrd.gz": gz.Bytes(), "init": []byte(initScript), "INFO": []byte(info), "complete": nil,
	} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	os.RemoveAll(dir) // an incomplete leftover
	return os.Rename(out, dir)
}

// loadModules reads the wanted modules that are not built into the kernel,
// plus their dependencies, and returns them with a load order: the wanted
// order, each module preceded by its missing dependencies.
func loadModules(moddir string, want []string) (map[string][]byte, []string, error) {
	norm := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(moddir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			builtin[norm(modName(line))] = true
		}
	}
	files := map[string]string{}
	_ = filepath.WalkDir(filepath.Join(moddir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if n := modName(p); n != "" {
				files[norm(n)] = p
			}
		}
		return nil
	})
	mods := map[string][]byte{}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		name = norm(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		state[name] = 1
		defer func() { state[name] = 2 }()
		path, ok := files[name]
		if !ok {
			if builtin[name] {
				return nil
			}
			return fmt.Errorf("module %s: neither built in nor in %s", name, moddir)
		}
		data, err := readModule(path)
		if err != nil {
			return err
		}
		deps, err := moduleDepends(data)
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		mods[name] = data
		order = append(order, name)
		return nil
	}
	for _, name := range want {
		if err := visit(name); err != nil {
			return nil, nil, err
		}
	}
	return mods, order, nil
}

// modName returns the module name of a path ending in .ko, .ko.xz, .ko.zst
// or .ko.gz, or "".
func modName(p string) string {
	base := filepath.Base(p)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(base, ext) {
			return strings.TrimSuffix(base, ext)
		}
	}
	return ""
}

func readModule(path string) ([]byte, error) {
	var tool []string
	switch {
	case strings.HasSuffix(path, ".ko.xz"):
		tool = []string{"xz", "-dc", path}
	case strings.HasSuffix(path, ".ko.zst"):
		tool = []string{"zstd", "-dcq", path}
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	default:
		return os.ReadFile(path)
	}
	if _, err := exec.LookPath(tool[0]); err != nil {
		return nil, unavailableError{fmt.Errorf("%s needs %s: %v", path, tool[0], err)}
	}
	out, err := exec.Command(tool[0], tool[1:]...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", strings.Join(tool, " "), err)
	}
	return out, nil
}

// moduleDepends reads "depends=" from the module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
			deps = append(deps, strings.Split(string(v), ",")...)
		}
	}
	sort.Strings(deps)
	return deps, nil
}

// cpioWriter writes the "newc" format the kernel unpacks into its initramfs.
type cpioWriter struct {
	w   *bytes.Buffer
	ino int
}

func newCPIO(w *bytes.Buffer) *cpioWriter { return &cpioWriter{w: w, ino: 1} }

func (c *cpioWriter) entry(name string, mode uint32, rmaj, rmin int, data []byte) {
	c.ino++
	nlink := 1
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	c.w.WriteString(name)
	c.w.WriteByte(0)
	c.pad()
	c.w.Write(data)
	c.pad()
}

func (c *cpioWriter) pad() {
	for c.w.Len()%4 != 0 {
		c.w.WriteByte(0)
	}
}

func (c *cpioWriter) dir(name string) { c.entry(name, syscall.S_IFDIR|0o755, 0, 0, nil) }
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, syscall.S_IFREG|perm, 0, 0, data)
}
func (c *cpioWriter) node(name string, mode uint32, major, minor int) {
	c.entry(name, mode, major, minor, nil)
}
func (c *cpioWriter) close() error {
	c.ino = -1 // the trailer has inode 0
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return nil
}

// MakeDisk writes a raw disk image of size bytes holding an ext4 filesystem
// (no partition table) with a file "marker" containing marker.
func MakeDisk(t testing.TB, path string, size int64, marker string) {
	t.Helper()
	needTools(t, "mkfs.ext4")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "holdfast", "-d", src, path).CombinedOutput(); err != nil {
		t.Fatalf("tinyguest: mkfs.ext4 %s: %v: %s", path, err, out)
	}
}

// ReadDiskFile returns the contents of file name (e.g. "boots") in the root
// of a filesystem image made by MakeDisk, read with debugfs.
func ReadDiskFile(t testing.TB, img, name string) string {
	t.Helper()
	needTools(t, "debugfs")
	cmd := exec.Command("debugfs", "-R", "cat /"+name, img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tinyguest: debugfs cat /%s %s: %v: %s", name, img, err, stderr.Bytes())
	}
	if strings.Contains(stderr.String(), "File not found") {
		t.Fatalf("tinyguest: %s: /%s not found", img, name)
	}
	return string(out)
}

// console collects QEMU's output and signals the end marker.
type console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	once sync.Once
	at   time.Time
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	b := c.buf.Bytes()
	if bytes.Contains(b, []byte(Done)) || bytes.Contains(b, []byte(Failed)) {
		c.once.Do(func() { c.at = clock.Real().Now(); close(c.done) })
	}
	return len(p), nil
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ReplaceAll(c.buf.String(), "\r\n", "\n")
}

// Boot runs the guest under qemu-system-x86_64 (TCG, 256 MiB, serial
// console, no network, -no-reboot) with driveArgs added (e.g. "-drive",
// "file=/abs/disk.img,format=raw,if=virtio"; a single string holding
// several space-separated arguments is split). It waits until the guest
// prints HOLDFAST-DONE or HOLDFAST-FAILED, QEMU exits, or timeout passes,
// and returns the console output (QEMU's own messages included) and the
// time from start to the end marker (or to the end of the wait). It does
// not fail t when the guest fails: check console for Done and Marker.
// QEMU has exited (or been killed) when Boot returns, so the disk is free.
func Boot(t testing.TB, g Guest, timeout time.Duration, driveArgs ...string) (string, time.Duration) {
	t.Helper()
	needTools(t, "qemu-system-x86_64")
	args := []string{
		"-accel", "tcg", "-m", "256", "-nodefaults", "-no-reboot",
		"-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none",
		"-kernel", g.Kernel, "-initrd", g.Initrd,
		"-append", "console=ttyS0 quiet panic=-1",
	}
	for _, a := range driveArgs {
		if strings.HasPrefix(a, "-") && strings.Contains(a, " ") {
			args = append(args, strings.Fields(a)...)
		} else {
			args = append(args, a)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	con := &console{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = con, con
	cmd.WaitDelay = 5 * time.Second
	start := clock.Real().Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("tinyguest: start qemu: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var took time.Duration
	select {
	case <-con.done:
		took = con.at.Sub(start)
		select { // poweroff -f ends QEMU at once; don't wait long
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Logf("tinyguest: qemu still running after %s; killing it", Done)
			cancel()
			<-exited
		}
	case err := <-exited:
		took = clock.Real().Since(start)
		select {
		case <-con.done:
			took = con.at.Sub(start)
		default:
			t.Logf("tinyguest: qemu exited (%v) before %s", err, Done)
		}
	case <-timer.C:
		took = clock.Real().Since(start)
		t.Logf("tinyguest: no %s after %v; killing qemu", Done, timeout)
		cancel()
		<-exited
	}
	return con.String(), took
}
