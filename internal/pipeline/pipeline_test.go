package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

const cs = repo.MinChunkSize

// streamDisk opens ix as a restore does (restorefs, streamed), closed at
// the end of the test.
func streamDisk(t testing.TB, r repo.ChunkReader, ix *repo.Index) *restorefs.Disk {
	t.Helper()
	d, err := restorefs.NewDisk(context.Background(), r, "test", 0, ix, restorefs.StreamOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func restoreTo(t *testing.T, r *repo.Repository, m *repo.Manifest, disk int) []byte {
	t.Helper()
	ix, err := r.LoadIndex(context.Background(), m, disk)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.img")
	ft, err := OpenTarget(context.Background(), out, ix.DiskSize, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreDisk(context.Background(), streamDisk(t, r, ix), ft.RestoreTarget, Options{Workers: 3}); err != nil {
		t.Fatal(err)
	}
	if err := ft.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	return b
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := memdisk.Standard(cs)
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	st := m.Disks[0].Stats
	if want := int64(30*cs + 1000); st.BytesRead != want {
		t.Errorf("bytes read %d, want %d (unallocated chunks must not be read)", st.BytesRead, want)
	}
	if d.Read.Load() != st.BytesRead {
		t.Errorf("disk saw %d bytes read, stats say %d", d.Read.Load(), st.BytesRead)
	}
	if want := int64(20 * cs); st.BytesZero != want {
		t.Errorf("bytes zero %d, want %d", st.BytesZero, want)
	}
	// chunks 30-39 are identical: stored once.
	if want := int64(11*cs + 1000); st.BytesNew != want {
		t.Errorf("bytes new %d, want %d", st.BytesNew, want)
	}
	if m.Disks[0].Chunks != 21 {
		t.Errorf("index entries %d, want 21", m.Disks[0].Chunks)
	}
	if got := restoreTo(t, r, m, 0); !bytes.Equal(got, d.Data) {
		t.Fatal("restored disk differs")
	}
	// Unchanged re-backup stores nothing new.
	m2, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Disks[0].Stats.BytesNew != 0 || m2.Disks[0].Stats.BytesStored != 0 {
		t.Errorf("unchanged backup stored %+v", m2.Disks[0].Stats)
	}
}

func TestChangedExtentsLimitReads(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := memdisk.Standard(cs)
	m1, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	prev, err := r.LoadIndex(ctx, m1, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.Data[5*cs+10] ^= 0xff // change inside chunk 5
	d.Read.Store(0)
	ix, st, err := BackupDisk(ctx, r, DiskJob{Disk: d, ChunkSize: cs, Previous: prev, ChangedKnown: true,
		Changed: []source.Extent{{Offset: 5*cs + 10, Length: 1}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Read.Load() != cs || st.BytesRead != cs {
		t.Errorf("read %d bytes (stats %d), want exactly one chunk", d.Read.Load(), st.BytesRead)
	}
	if st.BytesNew != cs {
		t.Errorf("new %d, want one chunk", st.BytesNew)
	}
	if len(ix.Entries) != len(prev.Entries) {
		t.Errorf("entries %d vs previous %d", len(ix.Entries), len(prev.Entries))
	}
	for _, e := range prev.Entries {
		id, ok := ix.Lookup(e.N)
		if !ok || (e.N != 5) != (id == e.ID) {
			t.Errorf("chunk %d: reuse mismatch", e.N)
		}
	}
}

func TestBackupFailureCommitsNothing(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := memdisk.Standard(cs)
	d.FailAt(7 * cs)
	if _, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{}); err == nil {
		t.Fatal("backup with a read error succeeded")
	}
	ms, err := r.ListPoints(ctx)
	if err != nil || len(ms) != 0 {
		t.Fatalf("points after failed backup: %d %v", len(ms), err)
	}
	d.FailAt(-1)
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Disks[0].Stats.BytesReused == 0 {
		t.Error("retry reused no chunks stored by the failed run")
	}
}

func TestRestoreRefusesCorruptChunk(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := memdisk.Standard(cs)
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := r.LoadIndex(ctx, m, 0)
	id := ix.Entries[3].ID.String()
	p := filepath.Join(r.Backend().Location(), "chunks", id[:2], id)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	_ = os.WriteFile(p, b, 0o600)
	ft, _ := OpenTarget(ctx, filepath.Join(t.TempDir(), "o"), ix.DiskSize, TargetOptions{})
	defer ft.Abort()
	_, err = RestoreDisk(ctx, streamDisk(t, r, ix), ft.RestoreTarget, Options{})
	if !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("restore of a corrupt chunk: %v, want ErrCorrupt", err)
	}
}

func TestRestoreWriteZerosForDevices(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := memdisk.Standard(cs)
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := r.LoadIndex(ctx, m, 0)
	// An "existing disk" full of garbage must end up equal to the backup.
	p := filepath.Join(t.TempDir(), "dev")
	_ = os.WriteFile(p, bytes.Repeat([]byte{0xee}, len(d.Data)), 0o600)
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	if _, err := RestoreDisk(ctx, streamDisk(t, r, ix), RestoreTarget{W: f, WriteZeros: true}, Options{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got, _ := os.ReadFile(p); !bytes.Equal(got, d.Data) {
		t.Fatal("restore over existing data differs")
	}
}
