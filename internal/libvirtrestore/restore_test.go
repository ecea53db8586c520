package libvirtrestore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

const pointXML = `<domain type='qemu' id='3'>
  <name>web1</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/web1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/data.img'/><target dev='vdb' bus='virtio'/></disk>
    <interface type='user'><mac address='52:54:00:12:34:56'/></interface>
  </devices>
</domain>`

// fakeLibvirt is libvirtd's domain list in memory; it records the calls.
type fakeLibvirt struct {
	doms      map[string]*fakeDomain
	defineErr error
	startErr  error
	calls     []string
}

type fakeDomain struct {
	uuid   golibvirt.UUID
	xml    string
	active bool
}

var errNoDomain = golibvirt.Error{Code: uint32(golibvirt.ErrNoDomain), Message: "no domain"}

func (f *fakeLibvirt) add(name, id string, active bool) {
	f.doms[name] = &fakeDomain{uuid: golibvirt.UUID(uuid.MustParse(id)), xml: "<domain><name>" + name + "</name></domain>", active: active}
}

func (f *fakeLibvirt) DomainLookupByName(name string) (golibvirt.Domain, error) {
	if d, ok := f.doms[name]; ok {
		return golibvirt.Domain{Name: name, UUID: d.uuid}, nil
	}
	return golibvirt.Domain{}, errNoDomain
}

func (f *fakeLibvirt) DomainLookupByUUID(id golibvirt.UUID) (golibvirt.Domain, error) {
	for n, d := range f.doms {
		if d.uuid == id {
			return golibvirt.Domain{Name: n, UUID: id}, nil
		}
	}
	return golibvirt.Domain{}, errNoDomain
}

func (f *fakeLibvirt) DomainGetXMLDesc(dom golibvirt.Domain, _ golibvirt.DomainXMLFlags) (string, error) {
	return f.doms[dom.Name].xml, nil
}

func (f *fakeLibvirt) DomainIsActive(dom golibvirt.Domain) (int32, error) {
	if f.doms[dom.Name].active {
		return 1, nil
	}
	return 0, nil
}

func (f *fakeLibvirt) DomainDestroy(dom golibvirt.Domain) error {
	f.calls = append(f.calls, "destroy "+dom.Name)
	f.doms[dom.Name].active = false
	return nil
}

func (f *fakeLibvirt) DomainUndefineFlags(dom golibvirt.Domain, flags golibvirt.DomainUndefineFlagsValues) error {
	if flags&golibvirt.DomainUndefineCheckpointsMetadata == 0 || flags&golibvirt.DomainUndefineNvram != 0 {
		return errors.New("bad undefine flags")
	}
	f.calls = append(f.calls, "undefine "+dom.Name)
	delete(f.doms, dom.Name)
	return nil
}

func (f *fakeLibvirt) DomainDefineXMLFlags(x string, _ golibvirt.DomainDefineFlags) (golibvirt.Domain, error) {
	rec, err := libvirt.ParseRecorded(x)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	f.calls = append(f.calls, "define "+rec.Name)
	if f.defineErr != nil && strings.Contains(x, "qcow2") {
		return golibvirt.Domain{}, f.defineErr
	}
	id, _ := uuid.Parse(rec.UUID)
	f.doms[rec.Name] = &fakeDomain{uuid: golibvirt.UUID(id), xml: x}
	return golibvirt.Domain{Name: rec.Name, UUID: golibvirt.UUID(id)}, nil
}

func (f *fakeLibvirt) DomainCreate(dom golibvirt.Domain) error {
	f.calls = append(f.calls, "start "+dom.Name)
	if f.startErr != nil {
		return f.startErr
	}
	f.doms[dom.Name].active = true
	return nil
}

var _ Libvirt = (*fakeLibvirt)(nil)

// fixture is a point of two disks recorded with pointXML.
type fixture struct {
	r    *repo.Repository
	m    *repo.Manifest
	data [][]byte
	pool string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-nbd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install qemu-utils)", tool)
		}
	}
	f := &fixture{r: testrepo.New(t, nil), pool: t.TempDir()}
	f.data = [][]byte{bytes.Repeat([]byte{0x11}, 2*repo.MinChunkSize), bytes.Repeat([]byte{0x22}, repo.MinChunkSize)}
	var disks []source.Disk
	for _, d := range f.data {
		disks = append(disks, memdisk.New(bytes.Clone(d)))
	}
	var err error
	f.m, err = pipeline.BackupPoint(context.Background(), f.r, pipeline.PointRequest{VM: "web1", Disks: disks,
		ChunkSize: repo.MinChunkSize, Config: &repo.VMConfig{Platform: "libvirt", DomainXML: pointXML}}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) request(l Libvirt, name string, force bool) Request {
	return Request{Libvirt: l, Config: f.m.Config, DiskCount: len(f.m.Disks), Name: name, PoolDir: f.pool, Force: force,
		OpenDisk: func(ctx context.Context, i int) (*restorefs.Disk, error) {
			return restorefs.OpenDisk(ctx, f.r, f.m, i, restorefs.StreamOptions())
		}}
}

func (f *fixture) files(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(f.pool)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

func TestRestoreIdentity(t *testing.T) {
	const orig = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
	tests := []struct {
		name     string
		setup    func(*fakeLibvirt)
		as       string
		force    bool
		newID    bool
		replaced string
		calls    []string
	}{
		{name: "the original is gone", setup: func(*fakeLibvirt) {}, calls: []string{"define web1", "start web1"}},
		{name: "another name", setup: func(f *fakeLibvirt) { f.add("web1", orig, true) }, as: "copy", newID: true,
			calls: []string{"define copy", "start copy"}},
		{name: "the original renamed", setup: func(f *fakeLibvirt) { f.add("web1-old", orig, true) }, newID: true,
			calls: []string{"define web1", "start web1"}},
		{name: "the original replaced", setup: func(f *fakeLibvirt) { f.add("web1", orig, true) }, force: true, replaced: "web1",
			calls: []string{"destroy web1", "undefine web1", "define web1", "start web1"}},
		{name: "a stopped copy replaced", setup: func(f *fakeLibvirt) {
			f.add("web1", orig, true)
			f.add("copy", "11111111-2222-3333-4444-555555555555", false)
		}, as: "copy", force: true, newID: true, replaced: "copy", calls: []string{"undefine copy", "define copy", "start copy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			l := &fakeLibvirt{doms: map[string]*fakeDomain{}}
			tc.setup(l)
			q := fx.request(l, tc.as, tc.force)
			q.Start = true
			res, err := Restore(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			name := tc.as
			if name == "" {
				name = "web1"
			}
			if res.Domain != name || res.NewIdentity != tc.newID || (res.UUID == orig) == tc.newID || res.Replaced != tc.replaced ||
				!res.Started || !slices.Equal(l.calls, tc.calls) {
				t.Fatalf("result %+v calls %v", res, l.calls)
			}
			if (res.MACs[0] == "52:54:00:12:34:56") == tc.newID {
				t.Errorf("MACs %v", res.MACs)
			}
			if got := fx.files(t); !slices.Equal(got, []string{name + "-vda.qcow2", name + "-vdb.qcow2"}) {
				t.Fatalf("files %v", got)
			}
			for i, d := range res.Disks {
				raw := filepath.Join(t.TempDir(), "d.raw")
				if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", d.File, raw).CombinedOutput(); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				if got, _ := os.ReadFile(raw); !bytes.Equal(got, fx.data[i]) {
					t.Fatalf("disk %d differs", i)
				}
			}
		})
	}
}

func TestRestoreRefusesWithoutForce(t *testing.T) {
	fx := newFixture(t)
	l := &fakeLibvirt{doms: map[string]*fakeDomain{}}
	l.add("copy", "11111111-2222-3333-4444-555555555555", true)
	if _, err := Restore(context.Background(), fx.request(l, "copy", false)); !errors.Is(err, ErrExists) {
		t.Fatalf("existing domain: %v", err)
	}
	if err := os.WriteFile(filepath.Join(fx.pool, "new-vdb.qcow2"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), fx.request(l, "new", false)); !errors.Is(err, pipeline.ErrTargetExists) {
		t.Fatalf("existing image: %v", err)
	}
	if got := fx.files(t); len(l.calls) != 0 || !slices.Equal(got, []string{"new-vdb.qcow2"}) {
		t.Fatalf("a refused restore did something: calls %v files %v", l.calls, got)
	}
}

// TestRestoreFailure: a failed disk leaves no file; a failed define
// removes the images the run created (not one it replaced) and defines
// the replaced domain again.
func TestRestoreFailure(t *testing.T) {
	fx := newFixture(t)
	l := &fakeLibvirt{doms: map[string]*fakeDomain{}}
	q := fx.request(l, "copy", false)
	open := q.OpenDisk
	q.OpenDisk = func(ctx context.Context, i int) (*restorefs.Disk, error) {
		if i == 1 {
			return nil, errors.New("disk 1 is damaged")
		}
		return open(ctx, i)
	}
	if _, err := Restore(context.Background(), q); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("failed disk: %v", err)
	}
	if got := fx.files(t); len(got) != 0 || len(l.calls) != 0 {
		t.Fatalf("after a failed disk: files %v calls %v", got, l.calls)
	}

	l.add("copy", "11111111-2222-3333-4444-555555555555", true)
	oldXML := l.doms["copy"].xml
	l.defineErr = errors.New("unsupported configuration")
	replaced := filepath.Join(fx.pool, "copy-vdb.qcow2")
	if err := os.WriteFile(replaced, []byte("old image"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Restore(context.Background(), fx.request(l, "copy", true))
	if err == nil || !strings.Contains(err.Error(), "unsupported configuration") || !strings.Contains(err.Error(), "defined again") {
		t.Fatalf("failed define: %v", err)
	}
	if got := fx.files(t); !slices.Equal(got, []string{"copy-vdb.qcow2"}) {
		t.Fatalf("files after a failed define: %v (want only the replaced one)", got)
	}
	if d := l.doms["copy"]; d == nil || d.xml != oldXML {
		t.Fatalf("the replaced domain was not defined again: %+v", d)
	}
	if want := []string{"destroy copy", "undefine copy", "define copy", "define copy"}; !slices.Equal(l.calls, want) {
		t.Fatalf("calls %v, want %v", l.calls, want)
	}
}

func TestRestoreNoXML(t *testing.T) {
	if _, err := Restore(context.Background(), Request{Config: &repo.VMConfig{Platform: "vsphere"}}); !errors.Is(err, ErrNoDomainXML) {
		t.Fatal(err)
	}
	fx := newFixture(t)
	q := fx.request(&fakeLibvirt{doms: map[string]*fakeDomain{}}, "", false)
	q.DiskCount = 3
	if _, err := Restore(context.Background(), q); !errors.Is(err, libvirt.ErrDomainXML) {
		t.Fatalf("disk count mismatch: %v", err)
	}
}

// TestRestoreStartFails: a domain that does not start stays defined, on
// its images, and the error says so.
func TestRestoreStartFails(t *testing.T) {
	fx := newFixture(t)
	l := &fakeLibvirt{doms: map[string]*fakeDomain{}, startErr: errors.New("no KVM")}
	q := fx.request(l, "copy", false)
	q.Start = true
	res, err := Restore(context.Background(), q)
	if err == nil || !strings.Contains(err.Error(), "defined but did not start") || res == nil || res.Started || len(res.Disks) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if got := fx.files(t); len(got) != 2 || l.doms["copy"] == nil {
		t.Fatalf("files %v, domain %v", got, l.doms["copy"])
	}
}
