package repocopy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repocopy"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/testutil/storagetest"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

const cs = repo.MinChunkSize

// randomDisk returns n chunks of random bytes (seeded) plus a short tail.
func randomDisk(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n*cs+cs/3)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// point commits disks as a point of vm at time t in r.
func point(t *testing.T, r *repo.Repository, vm string, at time.Time, disks ...[]byte) *repo.Manifest {
	t.Helper()
	m := &repo.Manifest{VM: vm, Time: at}
	testrepo.CommitPoint(t, r, m, disks)
	return m
}

// readDisk reads a whole disk of a point through restorefs.
func readDisk(t *testing.T, s repo.PointReader, m *repo.Manifest, disk int) []byte {
	t.Helper()
	d, err := restorefs.OpenDisk(context.Background(), s, m, disk, restorefs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(io.NewSectionReader(d, 0, d.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func listPoints(t *testing.T, r repocopy.Target) []*repo.Manifest {
	t.Helper()
	ms, err := r.ListPoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

var t0 = time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)

// TestCopy: points copy between repositories with different keys, restore
// identically from the copy, record their origin, and a second copy sends
// nothing.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	src, dst := testrepo.New(t, nil), testrepo.New(t, nil)
	a1 := randomDisk(1, 6)
	a2 := bytes.Clone(a1)
	copy(a2[2*cs:], randomDisk(2, 1)[:cs]) // one chunk changed
	b1, b2 := randomDisk(3, 3), randomDisk(4, 2)
	p1 := point(t, src, "vm1", t0, a1)
	p2 := point(t, src, "vm1", t0.Add(time.Hour), a2)
	p3 := point(t, src, "vm2", t0.Add(2*time.Hour), b1, b2)

	res, err := repocopy.Copy(ctx, src, dst, repocopy.Options{VerifySample: 4})
	if err != nil {
		t.Fatal(err)
	}
	// 7 chunks of a1, 1 changed in a2, 4 + 3 of vm2
	want := repocopy.Stats{PointsCopied: 3, ChunksSent: 15, ChunksPresent: 6, ChunksKnown: 6}
	got := res.Stats
	got.BytesRead, got.BytesSent = 0, 0
	if got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if res.Stats.BytesSent == 0 || res.Stats.BytesRead != int64(len(a1)+cs+len(b1)+len(b2)) {
		t.Errorf("bytes read %d sent %d", res.Stats.BytesRead, res.Stats.BytesSent)
	}
	ms := listPoints(t, dst)
	if len(ms) != 3 {
		t.Fatalf("target has %d points", len(ms))
	}
	for i, p := range []*repo.Manifest{p1, p2, p3} {
		m := ms[i]
		if m.ID != p.ID || m.VM != p.VM || !m.Time.Equal(p.Time) || m.CopiedFrom == nil ||
			m.CopiedFrom.Repository != src.Config().ID || m.CopiedFrom.Point != p.ID || m.CopiedFrom.Time.IsZero() {
			t.Errorf("copied manifest %+v of %+v", m, p)
		}
		if m.Disks[0].IndexHash == p.Disks[0].IndexHash {
			t.Errorf("point %s: the same index hash under different keys", p.ID)
		}
		for d := range p.Disks {
			if !bytes.Equal(readDisk(t, dst, m, d), readDisk(t, src, p, d)) {
				t.Errorf("point %s disk %d restores differently from the copy", p.ID, d)
			}
		}
	}
	vr, err := dst.Verify(ctx, repo.VerifyOptions{ReadData: true})
	if err != nil || len(vr.Problems) != 0 {
		t.Fatalf("verify the copy: %v %+v", err, vr.Problems)
	}

	again, err := repocopy.Copy(ctx, src, dst, repocopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := again.Stats; s.ChunksSent != 0 || s.PointsCopied != 0 || s.PointsSkipped != 3 || s.BytesRead != 0 || len(again.Skipped) != 3 {
		t.Errorf("second copy: %+v", again)
	}
}

// TestCopyIncrementalReadsOnlyChanges: a point copied after its parent
// reads only its changed chunks at the source; chunks repeated within a
// disk are sent once.
func TestCopyIncrementalReadsOnlyChanges(t *testing.T) {
	ctx := context.Background()
	src, dst := testrepo.New(t, nil), testrepo.New(t, nil)
	a1 := randomDisk(5, 8)
	copy(a1[5*cs:6*cs], a1[cs:2*cs]) // chunk 5 repeats chunk 1
	a2 := bytes.Clone(a1)
	copy(a2[3*cs:], randomDisk(6, 1)[:cs])
	p1 := point(t, src, "vm1", t0, a1)
	point(t, src, "vm1", t0.Add(time.Hour), a2)
	first, err := repocopy.Copy(ctx, src, dst, repocopy.Options{Points: []string{p1.ID[:6]}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Stats.ChunksSent != 8 || first.Stats.PointsCopied != 1 { // 9 chunks, one repeated
		t.Errorf("first copy: %+v", first.Stats)
	}
	second, err := repocopy.Copy(ctx, src, dst, repocopy.Options{VM: "vm1"})
	if err != nil {
		t.Fatal(err)
	}
	if s := second.Stats; s.ChunksSent != 1 || s.BytesRead != cs || s.ChunksKnown != 7 || s.PointsSkipped != 1 {
		t.Errorf("second copy: %+v", s)
	}
	ms := listPoints(t, dst)
	if len(ms) != 2 || !bytes.Equal(readDisk(t, dst, ms[1], 0), a2) || !bytes.Equal(readDisk(t, dst, ms[0], 0), a1) {
		t.Fatal("the copies do not restore the source's disks")
	}
}

// cancelAfter is a target that cancels the copy once n chunks are stored.
type cancelAfter struct {
	*repo.Repository
	n      int
	stored int
	cancel context.CancelFunc
}

func (c *cancelAfter) PutChunk(ctx context.Context, id repo.ChunkID, plain []byte) (int, error) {
	n, err := c.Repository.PutChunk(ctx, id, plain)
	if err == nil {
		if c.stored++; c.stored == c.n {
			c.cancel()
		}
	}
	return n, err
}

// TestCopyKilledLeavesNoPoint: a copy cancelled midway commits nothing,
// and the rerun sends only the chunks still missing.
func TestCopyKilledLeavesNoPoint(t *testing.T) {
	src, dst := testrepo.New(t, nil), testrepo.New(t, nil)
	disk := randomDisk(7, 10)
	point(t, src, "vm1", t0, disk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killer := &cancelAfter{Repository: dst, n: 4, cancel: cancel}
	_, err := repocopy.Copy(ctx, src, killer, repocopy.Options{Workers: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
	if ms := listPoints(t, dst); len(ms) != 0 {
		t.Fatalf("a cancelled copy left %d points", len(ms))
	}
	res, err := repocopy.Copy(context.Background(), src, dst, repocopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.ChunksSent != 11-4 || res.Stats.ChunksPresent != 4 {
		t.Errorf("rerun: %+v, want 7 sent and 4 present", res.Stats)
	}
	ms := listPoints(t, dst)
	if len(ms) != 1 || !bytes.Equal(readDisk(t, dst, ms[0], 0), disk) {
		t.Fatal("the rerun's copy does not restore the disk")
	}
}

// openOn opens the repository r on another backend view be.
func openOn(t *testing.T, be storage.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), be, []byte(testrepo.Password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestCopyCorruptSourceChunk: a damaged chunk at the source fails the copy
// with an error naming it, and nothing is committed.
func TestCopyCorruptSourceChunk(t *testing.T) {
	dir := t.TempDir()
	src := testrepo.New(t, storage.NewLocal(dir))
	point(t, src, "vm1", t0, randomDisk(8, 4))
	faulty := storagetest.NewFaulty(storage.NewLocal(dir))
	faulty.Add(storagetest.Fault{Op: storagetest.OpLoad, Prefix: "chunks/", Skip: 2, Times: 1, Corrupt: true})
	dst := testrepo.New(t, nil)
	_, err := repocopy.Copy(context.Background(), openOn(t, faulty), dst, repocopy.Options{})
	if !errors.Is(err, repo.ErrCorrupt) || !strings.Contains(err.Error(), "source: chunks/") {
		t.Fatalf("copy of a damaged source: %v", err)
	}
	if ms := listPoints(t, dst); len(ms) != 0 {
		t.Fatalf("a failed copy committed %d points", len(ms))
	}
}

// TestCopyRetriesTransientErrors: connection resets reading the source
// and storing at the target are retried without restarting the point.
func TestCopyRetriesTransientErrors(t *testing.T) {
	sdir, ddir := t.TempDir(), t.TempDir()
	src := testrepo.New(t, storage.NewLocal(sdir))
	disk := randomDisk(9, 5)
	point(t, src, "vm1", t0, disk)
	testrepo.New(t, storage.NewLocal(ddir))
	reset := fmt.Errorf("read tcp 127.0.0.1:1->127.0.0.1:2: %w", syscall.ECONNRESET)
	fs, fd := storagetest.NewFaulty(storage.NewLocal(sdir)), storagetest.NewFaulty(storage.NewLocal(ddir))
	fs.Add(storagetest.Fault{Op: storagetest.OpLoad, Prefix: "chunks/", Skip: 1, Times: 2, Err: reset})
	fd.Add(storagetest.Fault{Op: storagetest.OpSave, Prefix: "chunks/", Skip: 1, Times: 2, Err: io.ErrUnexpectedEOF})
	fd.Add(storagetest.Fault{Op: storagetest.OpSave, Prefix: "points/", Times: 1, Err: reset})
	dst := openOn(t, fd)
	res, err := repocopy.Copy(context.Background(), openOn(t, fs), dst,
		repocopy.Options{Retry: repocopy.RetryPolicy{Initial: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Retries != 5 || res.Stats.ChunksSent != 6 {
		t.Errorf("stats %+v, want 5 retries and 6 chunks sent", res.Stats)
	}
	ms := listPoints(t, dst)
	if len(ms) != 1 || !bytes.Equal(readDisk(t, dst, ms[0], 0), disk) {
		t.Fatal("the copy does not restore the disk")
	}
	// a permanent error is not retried
	fs.Add(storagetest.Fault{Op: storagetest.OpLoad, Prefix: "indexes/", Err: errors.New("permission denied")})
	point(t, src, "vm1", t0.Add(time.Hour), disk)
	src2 := openOn(t, fs)
	before := fs.Calls(storagetest.OpLoad)
	if _, err := repocopy.Copy(context.Background(), src2, dst, repocopy.Options{}); err == nil ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("copy with a permanent error: %v", err)
	}
	if n := fs.Calls(storagetest.OpLoad) - before; n != 3 { // two manifests, one index
		t.Errorf("a permanent error was retried: %d loads, want 3", n)
	}
}

// TestCopyConflict: a different point with the same ID at the target is
// an error, not skipped.
func TestCopyConflict(t *testing.T) {
	src, dst := testrepo.New(t, nil), testrepo.New(t, nil)
	p := point(t, src, "vm1", t0, randomDisk(10, 1))
	testrepo.CommitPoint(t, dst, &repo.Manifest{ID: p.ID, VM: "other", Time: t0}, [][]byte{randomDisk(11, 1)})
	_, err := repocopy.Copy(context.Background(), src, dst, repocopy.Options{})
	if !errors.Is(err, repocopy.ErrConflict) {
		t.Fatalf("copy onto a conflicting point: %v", err)
	}
}

func TestSelect(t *testing.T) {
	ms := []*repo.Manifest{
		{ID: "aaaa000000000001", VM: "vm1", Time: t0},
		{ID: "aaaa000000000002", VM: "vm2", Time: t0.Add(time.Hour)},
		{ID: "bbbb000000000003", VM: "vm1", Time: t0.Add(2 * time.Hour)},
		{ID: "cccc000000000004", VM: "vm1", Time: t0.Add(3 * time.Hour)},
	}
	tests := []struct {
		vm   string
		refs []string
		want string // IDs' first 4 digits and last digit, or the error's text
	}{
		{"", nil, "1 2 3 4"},
		{"vm1", nil, "1 3 4"},
		{"vm2", nil, "2"},
		{"vm3", nil, "restore point not found"},
		{"", []string{"vm1:latest", "latest"}, "4"},
		{"vm1", []string{"latest~1", "aaaa"}, "1 3"},
		{"", []string{"vm1:latest~2", "vm2:latest"}, "1 2"},
		{"", []string{"aaaa"}, "ambiguous"},
		{"vm2", []string{"bbbb"}, "among the points of VM vm2"},
		{"", []string{"vm1:latest~3"}, "restore point not found"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.vm, tc.refs), func(t *testing.T) {
			got, err := repocopy.Select(ms, tc.vm, tc.refs)
			var s string
			if err != nil {
				s = err.Error()
			} else {
				var ids []string
				for _, m := range got {
					ids = append(ids, m.ID[len(m.ID)-1:])
				}
				s = strings.Join(ids, " ")
			}
			if !strings.Contains(s, tc.want) || err == nil && s != tc.want {
				t.Errorf("Select(%q, %q) = %q, want %q", tc.vm, tc.refs, s, tc.want)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{&netTimeout{}, true},
		{fmt.Errorf("x: %w", repo.ErrCorrupt), false},
		{fmt.Errorf("x: %w", repo.ErrMissing), false},
		{context.Canceled, false},
		{errors.New("access refused"), false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := repocopy.Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v", tc.err, got)
		}
	}
}

type netTimeout struct{}

func (*netTimeout) Error() string   { return "i/o timeout" }
func (*netTimeout) Timeout() bool   { return true }
func (*netTimeout) Temporary() bool { return true }

// TestCopyNewerOnly: a point retention removed at the target is copied
// again by a plain copy, not with NewerOnly.
func TestCopyNewerOnly(t *testing.T) {
	ctx := context.Background()
	src, dst := testrepo.New(t, nil), testrepo.New(t, nil)
	point(t, src, "vm1", t0, randomDisk(30, 2))
	point(t, src, "vm1", t0.Add(time.Hour), randomDisk(31, 2))
	point(t, src, "vm2", t0, randomDisk(32, 1))
	if _, err := repocopy.Copy(ctx, src, dst, repocopy.Options{VM: "vm1"}); err != nil {
		t.Fatal(err)
	}
	if err := dst.RemovePoint(ctx, listPoints(t, dst)[0]); err != nil {
		t.Fatal(err)
	}
	res, err := repocopy.Copy(ctx, src, dst, repocopy.Options{NewerOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copied) != 1 || res.Copied[0].VM != "vm2" || res.Stats.PointsSkipped != 1 {
		t.Errorf("newer only: copied %d (%+v), want vm2's point alone", len(res.Copied), res.Stats)
	}
	res, err = repocopy.Copy(ctx, src, dst, repocopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copied) != 1 || res.Copied[0].VM != "vm1" || !res.Copied[0].Time.Equal(t0) {
		t.Errorf("plain copy: copied %+v, want vm1's first point again", res.Copied)
	}
}

// TestCopyMatch: Options.Match limits the copy to the VMs it accepts.
func TestCopyMatch(t *testing.T) {
	ctx := context.Background()
	src, dst := testrepo.New(t, nil), testrepo.New(t, nil)
	point(t, src, "web-1", t0, randomDisk(40, 1))
	point(t, src, "db-1", t0.Add(time.Minute), randomDisk(41, 1))
	point(t, src, "web-2", t0.Add(2*time.Minute), randomDisk(42, 1)) // copied oldest first: not a tie
	res, err := repocopy.Copy(ctx, src, dst, repocopy.Options{Match: func(vm string) bool { return strings.HasPrefix(vm, "web-") }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copied) != 2 || res.Copied[0].VM != "web-1" || res.Copied[1].VM != "web-2" || res.Stats.PointsSkipped != 0 {
		t.Errorf("copied %d points (%+v), want web-1's and web-2's", len(res.Copied), res.Stats)
	}
}

// TestCopySplitsChunks: a target with smaller chunks gets the source's
// chunks split into its own size (all-zero pieces left out, as a backup
// leaves zero chunks out); the copy restores identically, an incremental
// copy reads only what changed, and a copy back keeps the small chunks.
func TestCopySplitsChunks(t *testing.T) {
	ctx := context.Background()
	src, err := repo.Init(ctx, storage.NewLocal(t.TempDir()), []byte(testrepo.Password),
		repo.InitOptions{Encrypted: true, KDF: testrepo.FastKDF(), ChunkSize: 4 * cs})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := testrepo.New(t, nil)         // cs: a quarter of the source's
	a1 := randomDisk(40, 12)[:9*cs+100] // 2 whole source chunks and a short one
	clear(a1[5*cs : 6*cs])              // a zero piece inside source chunk 1
	a2 := bytes.Clone(a1)
	copy(a2[cs:], randomDisk(41, 1)[:cs]) // one piece of source chunk 0 changed
	point(t, src, "vm1", t0, a1)
	point(t, src, "vm1", t0.Add(time.Hour), a2)

	first, err := repocopy.Copy(ctx, src, dst, repocopy.Options{Points: []string{"vm1:latest~1"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := first.Stats; s.ChunksSent != 9 || s.BytesRead != int64(len(a1)) { // 10 pieces, one zero
		t.Errorf("first copy: %+v, want 9 chunks sent", s)
	}
	second, err := repocopy.Copy(ctx, src, dst, repocopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// source chunk 0 changed: read again (4 pieces, 1 new); chunks 1 and 2 known (3 + 2 pieces)
	if s := second.Stats; s.ChunksSent != 1 || s.ChunksPresent != 3+5 || s.ChunksKnown != 5 || s.BytesRead != 4*cs {
		t.Errorf("second copy: %+v", s)
	}
	ms := listPoints(t, dst)
	if len(ms) != 2 || ms[0].Disks[0].ChunkSize != cs || ms[0].Disks[0].Chunks != 9 {
		t.Fatalf("copied points %+v", ms)
	}
	if !bytes.Equal(readDisk(t, dst, ms[0], 0), a1) || !bytes.Equal(readDisk(t, dst, ms[1], 0), a2) {
		t.Fatal("the split copy does not restore the source's disks")
	}
	if again, err := repocopy.Copy(ctx, src, dst, repocopy.Options{}); err != nil || again.Stats.PointsSkipped != 2 {
		t.Errorf("a copy with other chunk sizes: %+v %v", again.Stats, err)
	}
	back := testrepo.New(t, nil)
	if _, err := repocopy.Copy(ctx, dst, back, repocopy.Options{}); err != nil {
		t.Fatal(err)
	}
	if ms := listPoints(t, back); len(ms) != 2 || !bytes.Equal(readDisk(t, back, ms[1], 0), a2) {
		t.Fatal("the copy of the split copy does not restore")
	}
}
