// Command scalegen writes a synthetic repository for bench/scale.sh: -chunks
// distinct chunks and -points restore points of one VM that reference them,
// through the repository API (chunks in parallel), so that gc, verify,
// forget and points can be measured at 100 k to 10 M chunks without backing
// up terabytes.
//
// Each chunk's plain content is -chunk-bytes bytes: a 16-byte header
// (the chunk number and a seed) and, after it, zeros. The default of 64
// bytes keeps a 3 M-chunk repository within a few GiB and the generation
// within minutes; with -chunk-bytes 262144 the chunks are full 256 KiB
// chunks that zstd compresses to about the same stored size, so the stored
// files differ little — what gc and verify (metadata) cost depends on the
// number of files and index entries, not on the chunks' plain size.
//
// Point p (0-based) has one disk whose index references chunks
// [p*step, p*step + chunks/2) at chunk positions 0, 1, …, where
// step = (chunks - chunks/2)/(points-1): every chunk is referenced, each
// point shares most of its chunks with its neighbours (as the points of a
// VM do), and forgetting the oldest point leaves step chunks for gc.
//
//	HOLDFAST_PASSWORD=x scalegen -repo /tmp/r -chunks 1000000 -points 10
//
// With -disk it writes instead a sparse raw image of -chunks chunks of
// -chunk-size bytes, each non-zero (16 distinct bytes at its start, the
// rest a hole): a backup source with many non-zero chunks that costs about
// one file system block per chunk. With -dense every chunk is full
// instead: distinct, compressible text (a new disk of real-looking data).
//
//	scalegen -disk /tmp/d.img -chunks 800000
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

type config struct {
	dir        string
	chunks     int
	points     int
	chunkBytes int
	chunkSize  int
	workers    int
	seed       uint64
	disk       string
	dense      bool
}

type result struct {
	Chunks         int     `json:"chunks"`
	Points         int     `json:"points"`
	EntriesPerPt   int     `json:"entries_per_point"`
	ChunkBytes     int     `json:"chunk_plain_bytes"`
	ChunkSeconds   float64 `json:"chunk_seconds"`
	PointSeconds   float64 `json:"point_seconds"`
	ChunksPerSec   float64 `json:"chunks_per_second"`
	ChunkSizeGeom  int     `json:"index_chunk_size"`
	RepositoryPath string  `json:"repository"`
}

func main() {
	var c config
	flag.StringVar(&c.dir, "repo", "", "directory of the new repository (must not hold one)")
	flag.IntVar(&c.chunks, "chunks", 100000, "distinct chunks to write")
	flag.IntVar(&c.points, "points", 10, "restore points referencing them")
	flag.IntVar(&c.chunkBytes, "chunk-bytes", 64, "plain bytes per chunk (16 to 262144)")
	flag.IntVar(&c.chunkSize, "chunk-size", repo.MinChunkSize, "the repository's chunk size (index geometry)")
	flag.IntVar(&c.workers, "workers", 2*runtime.GOMAXPROCS(0), "chunks written in parallel")
	flag.Uint64Var(&c.seed, "seed", 1, "makes the chunks of two repositories differ")
	flag.StringVar(&c.disk, "disk", "", "write a sparse image with -chunks non-zero chunks instead of a repository")
	flag.BoolVar(&c.dense, "dense", false, "with -disk: fill every chunk (distinct compressible text), not 16 bytes of it")
	flag.Parse()
	if c.disk != "" {
		if err := writeDisk(c); err != nil {
			fmt.Fprintln(os.Stderr, "scalegen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "scalegen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.dir == "" || c.chunks < 2 || c.points < 1 || c.chunkBytes < 16 || c.chunkBytes > c.chunkSize || c.workers < 1 {
		return errors.New("need -repo, -chunks ≥ 2, -points ≥ 1, 16 ≤ -chunk-bytes ≤ -chunk-size, -workers ≥ 1")
	}
	pw := os.Getenv("HOLDFAST_PASSWORD")
	if pw == "" {
		return errors.New("set HOLDFAST_PASSWORD")
	}
	r, err := repo.Init(ctx, storage.NewLocal(c.dir), []byte(pw), repo.InitOptions{Encrypted: true, ChunkSize: c.chunkSize})
	if err != nil {
		return err
	}
	defer r.Close()
	start := time.Now()
	ids, err := writeChunks(ctx, r, c)
	if err != nil {
		return err
	}
	chunkSecs := time.Since(start).Seconds()
	start = time.Now()
	width := c.chunks / 2
	if err := writePoints(ctx, r, ids, c.points, width); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(result{Chunks: c.chunks, Points: c.points, EntriesPerPt: width,
		ChunkBytes: c.chunkBytes, ChunkSeconds: chunkSecs, PointSeconds: time.Since(start).Seconds(),
		ChunksPerSec: float64(c.chunks) / chunkSecs, ChunkSizeGeom: r.Config().ChunkSize, RepositoryPath: c.dir})
}

// writeChunks stores the chunks in parallel and returns their IDs.
func writeChunks(ctx context.Context, r *repo.Repository, c config) ([]repo.ChunkID, error) {
	ids := make([]repo.ChunkID, c.chunks)
	var wg sync.WaitGroup
	errs := make(chan error, c.workers)
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := r.NewHasher()
			plain := make([]byte, c.chunkBytes)
			for i := w; i < c.chunks; i += c.workers {
				binary.LittleEndian.PutUint64(plain[0:], uint64(i))
				binary.LittleEndian.PutUint64(plain[8:], c.seed)
				id := h.Sum(plain)
				if _, err := r.PutChunk(ctx, id, plain); err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return ids, r.Backend().Sync(ctx)
}

// writePoints commits the points, oldest first, an hour apart.
func writePoints(ctx context.Context, r *repo.Repository, ids []repo.ChunkID, points, width int) error {
	step := 0
	if points > 1 {
		step = (len(ids) - width) / (points - 1)
	}
	cs := r.Config().ChunkSize
	now := time.Now().UTC()
	for p := range points {
		m := &repo.Manifest{ID: r.NewPointID(), VM: "scale", Time: now.Add(time.Duration(p-points) * time.Hour), Hostname: "scalegen"}
		enc, err := repo.NewIndexEncoder(int64(width)*int64(cs), cs, repo.EncoderOptions{})
		if err != nil {
			return err
		}
		first := p * step
		if p == points-1 {
			first = len(ids) - width // the last point ends at the last chunk
		}
		for n, id := range ids[first : first+width] {
			if err := enc.Add(uint64(n), id); err != nil {
				return err
			}
		}
		size, _ := enc.Geometry()
		count := enc.Count()
		hash, err := r.SaveEncodedIndex(ctx, m.ID, 0, enc)
		_ = enc.Close()
		if err != nil {
			return err
		}
		m.Disks = []repo.DiskManifest{{Index: 0, Size: size, ChunkSize: cs, Format: "raw", Location: "scalegen",
			IndexHash: hash, Chunks: count}}
		if err := r.CommitPoint(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// writeDisk writes the sparse image of -disk.
func writeDisk(c config) error {
	if err := repo.ValidateChunkSize(c.chunkSize); err != nil || c.chunks < 1 {
		return fmt.Errorf("need -chunks ≥ 1 and a valid -chunk-size (%v)", err)
	}
	f, err := os.OpenFile(c.disk, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	size := int64(c.chunks) * int64(c.chunkSize)
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	b := make([]byte, 16)
	if c.dense {
		b = make([]byte, c.chunkSize)
	}
	for i := range c.chunks {
		if c.dense {
			for off := 0; off+64 <= len(b); off += 64 {
				copy(b[off:off+64], fmt.Sprintf("seed %08d chunk %012d line %08d holdfast scale ..\n", c.seed%1e8, i, off/64))
			}
		} else {
			binary.LittleEndian.PutUint64(b[0:], uint64(i)+1)
			binary.LittleEndian.PutUint64(b[8:], c.seed)
		}
		if _, err := f.WriteAt(b, int64(i)*int64(c.chunkSize)); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}
