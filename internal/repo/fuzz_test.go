package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/testutil/storagetest"
)

// Fuzz tests for every parser of bytes read from a repository. Run one with
//
//	go test -run '^$' -fuzz '^FuzzUnmarshalIndex$' -fuzztime 25s ./internal/repo/
//
// Without -fuzz they run their seeds (and testdata/fuzz) as ordinary tests.

// allocated returns the bytes allocated on the heap while f runs. The fuzz
// functions run on one goroutine, so the count is f's own (plus noise from
// the runtime, which the callers' slack absorbs).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// fuzzKey is a fixed data key, so crashers reproduce.
var fuzzKey = bytes.Repeat([]byte{0x5a}, 32)

var (
	fuzzCodecOnce sync.Once
	fuzzCodecs    [2]*codec // [0] plain, [1] encrypted
)

func fuzzCodec(tb testing.TB, encrypted bool) *codec {
	fuzzCodecOnce.Do(func() {
		for i, enc := range []bool{false, true} {
			c, err := newCodec(fuzzKey, enc, CompressionFast)
			if err != nil {
				panic(err)
			}
			fuzzCodecs[i] = c
		}
	})
	if encrypted {
		return fuzzCodecs[1]
	}
	return fuzzCodecs[0]
}

// fuzzBinding is the name or ID a blob of each kind is bound to.
func fuzzBinding(kind byte) []byte {
	switch kind {
	case kindChunk:
		return bytes.Repeat([]byte{0xc1}, 32)
	case kindIndex:
		return []byte("indexes/0123456789abcdef/disk-0")
	}
	return []byte("points/0123456789abcdef")
}

func maxPlainFor(kind byte) int {
	if kind == kindChunk {
		return MaxChunkSize
	}
	return maxMetadata
}

// fixCRC recomputes a blob's header checksum so that the fuzzer reaches the
// decryption and decompression code behind it.
func fixCRC(b []byte) {
	if len(b) < blobHeaderLen {
		return
	}
	crc := crc32.Update(crc32.Checksum(b[:24], castagnoli), castagnoli, b[blobHeaderLen:])
	binary.LittleEndian.PutUint32(b[24:], crc)
}

func sampleIndex() *Index {
	return &Index{DiskSize: 3*MinChunkSize + 1000, ChunkSize: MinChunkSize, Entries: []IndexEntry{
		{N: 0, ID: ChunkID{1, 2, 3}}, {N: 2, ID: ChunkID{4, 5, 6}}, {N: 3, ID: ChunkID{0xff}}}}
}

func sampleManifest() *Manifest {
	return &Manifest{Version: 1, ID: "0123456789abcdef", VM: "web-01.example", Hostname: "host",
		Time: time.Date(2026, 3, 10, 18, 0, 0, 123, time.UTC),
		Disks: []DiskManifest{
			{Index: 0, Size: 10 << 30, ChunkSize: DefaultChunkSize, Format: "qcow2", Location: "/vm/a.qcow2",
				IndexHash: ChunkID{9, 9}, Chunks: 12, ChangeID: "52 8d", Transport: "file",
				Stats: Stats{BytesRead: 1, BytesZero: 2, BytesReused: 3, BytesNew: 4, BytesStored: 5}},
			{Index: 1, Size: 1 << 20, ChunkSize: MinChunkSize, Format: "raw"},
		},
		Notes: map[string]string{"quiesce": "ok"}}
}

func FuzzBlobOpen(f *testing.F) {
	ixb, err := sampleIndex().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	mb, err := json.Marshal(sampleManifest())
	if err != nil {
		f.Fatal(err)
	}
	rnd := make([]byte, 200)
	_, _ = rand.Read(rnd)
	plains := map[byte][][]byte{
		kindChunk:    {bytes.Repeat([]byte("holdfast "), 500), rnd, nil, {0}},
		kindIndex:    {ixb},
		kindManifest: {mb, bytes.Repeat(mb, 3)},
	}
	for _, enc := range []bool{false, true} {
		c := fuzzCodec(f, enc)
		for kind, ps := range plains {
			for _, p := range ps {
				blob := c.seal(kind, fuzzBinding(kind), p)
				f.Add(blob, kind, enc, false)
				f.Add(blob, kind, enc, true)
				f.Add(blob, kind, !enc, false)             // wrong repository type
				f.Add(blob, kind%3+1, enc, false)          // wrong kind
				f.Add(blob[:len(blob)-1], kind, enc, true) // truncated payload
				f.Add(blob[:blobHeaderLen], kind, enc, true)
				f.Add(blob[:blobHeaderLen-1], kind, enc, false)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, kind byte, encrypted, fix bool) {
		c := fuzzCodec(t, encrypted)
		in := bytes.Clone(b)
		if fix {
			fixCRC(in)
		}
		header := bytes.Clone(in[:min(len(in), blobHeaderLen)])
		binding := fuzzBinding(kind)
		maxPlain := maxPlainFor(kind)
		var out []byte
		var err error
		alloc := allocated(func() { out, err = c.open(in, kind, binding, maxPlain, nil) })
		// zstd turns at most 4 input bytes (an RLE block) into 128 KiB.
		justified := uint64(len(b))<<15 + 8<<20
		if alloc > 2*justified {
			t.Fatalf("open of %d bytes allocated %d bytes", len(b), alloc)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if header[4] != kind {
			t.Fatalf("opened a blob of kind %d as kind %d", header[4], kind)
		}
		if plainLen := binary.LittleEndian.Uint64(header[8:]); uint64(len(out)) != plainLen || len(out) > maxPlain {
			t.Fatalf("opened %d plain bytes, header says %d (max %d)", len(out), plainLen, maxPlain)
		}
		if encrypted != (header[5]&flagEncrypted != 0) {
			t.Fatalf("encrypted=%v codec opened a blob with flags %#x", encrypted, header[5])
		}
		// Whatever opens must survive a seal/open round trip.
		out = bytes.Clone(out)
		again, err := c.open(c.seal(kind, binding, out), kind, binding, maxPlain, nil)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("re-sealed blob does not open to the same bytes: %v", err)
		}
	})
}

func FuzzUnmarshalIndex(f *testing.F) {
	for _, ix := range []*Index{
		{DiskSize: 0, ChunkSize: MinChunkSize},
		{DiskSize: 1, ChunkSize: MaxChunkSize, Entries: []IndexEntry{{N: 0, ID: ChunkID{1}}}},
		sampleIndex(),
		{DiskSize: 1 << 40, ChunkSize: DefaultChunkSize, Entries: []IndexEntry{{N: 5}, {N: 300}, {N: 1<<20 - 1, ID: ChunkID{7}}}},
		{DiskSize: 1<<63 - 1, ChunkSize: MaxChunkSize, Entries: []IndexEntry{{N: 1<<40 - 1}}},
	} {
		b, err := ix.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte("HFIX"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ix *Index
		var err error
		alloc := allocated(func() { ix, err = UnmarshalIndex(b) })
		// An entry needs at least 33 input bytes and takes 40 in memory.
		if alloc > uint64(2*len(b))+64<<10 {
			t.Fatalf("UnmarshalIndex of %d bytes allocated %d bytes", len(b), alloc)
		}
		// CheckIndex (what SaveEncodedIndex and the agent run) accepts
		// exactly what UnmarshalIndex accepts, without holding the entries.
		var cix *Index
		var count int
		var cerr error
		if alloc := allocated(func() { cix, count, cerr = CheckIndex(b) }); alloc > 64<<10 {
			t.Fatalf("CheckIndex of %d bytes allocated %d bytes", len(b), alloc)
		}
		if (cerr == nil) != (err == nil) {
			t.Fatalf("CheckIndex: %v, UnmarshalIndex: %v", cerr, err)
		}
		if err == nil {
			if count != len(ix.Entries) || cix.DiskSize != ix.DiskSize || cix.ChunkSize != ix.ChunkSize {
				t.Fatalf("CheckIndex: %d entries, geometry %d/%d; UnmarshalIndex: %d, %d/%d",
					count, cix.DiskSize, cix.ChunkSize, len(ix.Entries), ix.DiskSize, ix.ChunkSize)
			}
			enc, eerr := NewIndexEncoder(ix.DiskSize, ix.ChunkSize, EncoderOptions{SpillAt: 100, Dir: t.TempDir()})
			if eerr != nil {
				t.Fatal(eerr)
			}
			for _, e := range ix.Entries {
				if eerr := enc.Add(e.N, e.ID); eerr != nil {
					t.Fatal(eerr)
				}
			}
			got, eerr := enc.Bytes()
			if eerr != nil || !bytes.Equal(got, b) {
				t.Fatalf("IndexEncoder does not give back the only encoding of a valid index (%v)", eerr)
			}
			_ = enc.Close()
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if c := uint64(cap(ix.Entries)); c > uint64(len(b)-indexHeaderLen)/33 {
			t.Fatalf("%d entries reserved for %d bytes", c, len(b))
		}
		total := ix.Chunks()
		if want := (uint64(ix.DiskSize) + uint64(ix.ChunkSize) - 1) / uint64(ix.ChunkSize); total != want {
			t.Fatalf("Chunks() = %d for disk size %d, chunk size %d; want %d", total, ix.DiskSize, ix.ChunkSize, want)
		}
		var data int64
		for i, e := range ix.Entries {
			if e.N >= total || i > 0 && e.N <= ix.Entries[i-1].N {
				t.Fatalf("entry %d: chunk %d (previous %v, disk has %d chunks)", i, e.N, ix.Entries[max(i-1, 0)].N, total)
			}
			n := ix.ChunkLen(e.N)
			if n <= 0 || n > ix.ChunkSize {
				t.Fatalf("ChunkLen(%d) = %d with chunk size %d, disk size %d", e.N, n, ix.ChunkSize, ix.DiskSize)
			}
			if id, ok := ix.Lookup(e.N); !ok || id != e.ID {
				t.Fatalf("Lookup(%d) = %v, %v", e.N, id, ok)
			}
			data += int64(n)
		}
		if got := ix.DataBytes(); got != data || got > ix.DiskSize {
			t.Fatalf("DataBytes() = %d, want %d (disk size %d)", got, data, ix.DiskSize)
		}
		re, err := ix.MarshalBinary()
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b, re)
		}
	})
}

func FuzzUnmarshalManifest(f *testing.F) {
	mb, err := json.Marshal(sampleManifest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mb)
	f.Add(mb[:len(mb)/2])
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef","vm":"a","time":"2026-01-01T00:00:00Z","disks":[]}`))
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef","vm":"a","time":"0000-01-01T00:30:00+01:00","disks":null}`))
	f.Add([]byte(`{"version":2,"id":"0123456789abcdef","vm":"a"}`))
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef","vm":"a","disks":[],"copied_from":{"repository":"r","point":"0123456789abcdef","time":"2026-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef","vm":"a","disks":[],"copied_from":{"point":"../x"}}`))
	f.Add([]byte(`{"version":1,"id":"../../config","vm":"a"}`))
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef","vm":"a","disks":[{"index":1,"chunk_size":262144}]}`))
	f.Add([]byte(`{"version":1,"id":"0123456789abcdef","vm":"a","disks":[{"index":0,"chunk_size":262144,"index_hash":"zz"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalManifest(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if m.Version != 1 || !pointIDPattern.MatchString(m.ID) || ValidateVMName(m.VM) != nil {
			t.Fatalf("accepted manifest %+v", m)
		}
		for i, d := range m.Disks {
			if d.Index != i || d.Size < 0 || d.Chunks < 0 || ValidateChunkSize(d.ChunkSize) != nil {
				t.Fatalf("accepted disk %d: %+v", i, d)
			}
		}
		// What parses must re-encode to something that parses the same.
		re, err := json.Marshal(m)
		if err != nil {
			// encoding/json refuses some times it parsed (years outside
			// 0..9999 after a zone offset); CommitPoint would report it.
			if strings.Contains(err.Error(), "Time.MarshalJSON") {
				return
			}
			t.Fatalf("re-marshal: %v", err)
		}
		m2, err := UnmarshalManifest(re)
		if err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v\n%s", err, re)
		}
		re2, _ := json.Marshal(m2)
		if !bytes.Equal(re, re2) {
			t.Fatalf("manifest round trip differs:\n%s\n%s", re, re2)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	cfg := Config{Version: 1, ID: "0123456789abcdef0123456789abcdef", Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		ChunkSize: DefaultChunkSize, Compression: CompressionFast, Encryption: EncryptionAESGCM}
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	f.Add(cb)
	f.Add(cb[:len(cb)-2])
	f.Add([]byte(`{"version":1,"id":"x","chunk_size":8388608,"compression":"none","encryption":"none"}`))
	f.Add([]byte(`{"version":1,"id":"x","chunk_size":8388609,"compression":"none","encryption":"none"}`))
	f.Add([]byte(`{"version":2,"id":"x","chunk_size":1048576,"compression":"fast","encryption":"none"}`))
	f.Add([]byte(`{"version":1,"id":"","chunk_size":1048576,"compression":"fast","encryption":"rot13"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			if c != (Config{}) {
				t.Fatalf("failed parse returned %+v", c)
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("accepted invalid config %+v: %v", c, err)
		}
		if _, err := newCodec(fuzzKey, c.Encryption == EncryptionAESGCM, c.Compression); err != nil {
			t.Fatalf("accepted config %+v gives no codec: %v", c, err)
		}
		re, err := json.Marshal(c)
		if err != nil {
			if strings.Contains(err.Error(), "Time.MarshalJSON") {
				return
			}
			t.Fatalf("re-marshal: %v", err)
		}
		c2, err := ParseConfig(re)
		if err != nil || c2.ID != c.ID || c2.ChunkSize != c.ChunkSize || c2.Compression != c.Compression ||
			c2.Encryption != c.Encryption || !c2.Created.Equal(c.Created) {
			t.Fatalf("config round trip: %+v -> %+v, %v", c, c2, err)
		}
	})
}

// cheapKDF reports whether unwrapping with p is quick enough for a fuzz
// iteration (the parser allows up to 1 GiB and 20 passes).
func cheapKDF(p KDFParams) bool { return p.Memory <= 1024 && p.Time <= 3 && p.Threads <= 4 }

func FuzzParseKeyFile(f *testing.F) {
	master := bytes.Repeat([]byte{7}, masterLen)
	for _, enc := range []bool{true, false} {
		kf, err := newKeyFile(master, []byte("secret"), enc, fastKDF)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.MarshalIndent(kf, "", "  ")
		f.Add(b)
		f.Add(b[:len(b)-3])
	}
	kf, _ := newKeyFile(master, []byte("secret"), true, fastKDF)
	for _, p := range []KDFParams{
		{Time: 1, Memory: 1 << 20, Threads: 1},
		{Time: 1, Memory: 1<<20 + 1, Threads: 1},
		{Time: 0, Memory: 64, Threads: 1},
		{Time: 21, Memory: 64, Threads: 1},
		{Time: 1, Memory: 64, Threads: 0},
		{Time: 1, Memory: 7, Threads: 1},
		{Time: 1, Memory: 8, Threads: 255},
	} {
		k := kf
		k.Params = p
		b, _ := json.Marshal(k)
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"kdf":"argon2id","params":{"time":1,"memory_kib":64,"threads":1},"salt":"AAAAAAAAAAAAAAAAAAAAAA==","nonce":"AAAAAAAAAAAAAAAA","data":null}`))
	f.Add([]byte(`{"version":1,"kdf":"scrypt"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseKeyFile(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		switch kf.KDF {
		case "none":
			m, err := kf.unwrap([]byte("wrong"))
			if err != nil || len(m) != masterLen {
				t.Fatalf("kdf none: unwrap = %d bytes, %v", len(m), err)
			}
			return
		case "argon2id":
		default:
			t.Fatalf("accepted kdf %q", kf.KDF)
		}
		p := kf.Params
		if p.Time < 1 || p.Time > 20 || p.Memory < 8 || p.Memory > 1<<20 || p.Threads < 1 {
			t.Fatalf("accepted argon2 parameters %+v", p)
		}
		if len(kf.Nonce) != 12 || len(kf.Salt) < 16 || len(kf.Data) != masterLen+16 {
			t.Fatalf("accepted nonce %d, salt %d, data %d bytes", len(kf.Nonce), len(kf.Salt), len(kf.Data))
		}
		if !cheapKDF(p) {
			return
		}
		if _, err := kf.unwrap([]byte("not the password")); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("unwrap with a wrong password: %v", err)
		}
	})
}

// FuzzLockFile feeds arbitrary lock file content to the lock reader and to
// taking the exclusive (gc) lock.
func FuzzLockFile(f *testing.F) {
	host, _ := os.Hostname()
	now := time.Now().UTC()
	for _, li := range []LockInfo{
		{Kind: LockShared, Hostname: host, PID: os.Getpid(), Started: now},
		{Kind: LockExclusive, Hostname: host, PID: os.Getpid(), Started: now},
		{Kind: LockExclusive, Hostname: "elsewhere", PID: 1, Started: now.Add(-time.Hour)},
		{Kind: LockExclusive, Hostname: host, PID: -1},
	} {
		b, _ := json.Marshal(li)
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"exclusive","pid":1e99}`))
	f.Add([]byte(`garbage`))
	be := storagetest.NewMem()
	r, err := Init(context.Background(), be, nil, InitOptions{ChunkSize: MinChunkSize})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx := context.Background()
		be.Reset("locks/")
		if err := be.Save(ctx, "locks/fuzz", b); err != nil {
			t.Fatal(err)
		}
		live, err := r.ActiveLocks(ctx)
		if err != nil {
			t.Fatalf("ActiveLocks: %v", err)
		}
		exclusive := false
		for _, li := range live {
			if li.Kind == "invalid" || li.name != "locks/fuzz" {
				t.Fatalf("live lock %+v", li)
			}
			exclusive = exclusive || li.Kind == LockExclusive
		}
		l, err := r.Lock(ctx, LockExclusive)
		if exclusive != errors.Is(err, ErrLocked) {
			t.Fatalf("live exclusive lock %v, Lock: %v", exclusive, err)
		}
		if err == nil {
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
		}
		if n := be.Count("locks/"); n != 1 {
			t.Fatalf("%d lock files after Lock/Release, want only the fuzzed one", n)
		}
	})
}
