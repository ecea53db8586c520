// Command s3synth fills a repository with a synthetic set of restore
// points fast, for request-count benchmarks of metadata commands (verify,
// gc) at a given chunk count: -chunks distinct small chunks spread over
// -points points of one disk each. The chunks are small (-bytes): verify
// without --read-data and gc read no chunk, so their cost depends on the
// number of chunks, not their size. Not for restores.
//
//	s3synth -repo s3+http://127.0.0.1:9000/bench/repo -chunks 100000 -points 10
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/backends"
)

func main() {
	loc := flag.String("repo", "", "repository location")
	chunks := flag.Int("chunks", 100000, "distinct chunks to store")
	points := flag.Int("points", 10, "restore points sharing them out")
	size := flag.Int("bytes", 4096, "plain bytes per chunk")
	workers := flag.Int("workers", 32, "parallel uploads")
	flag.Parse()
	if err := run(context.Background(), *loc, *chunks, *points, *size, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "s3synth:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, loc string, chunks, points, size, workers int) error {
	if loc == "" || chunks < 1 || points < 1 || points > chunks || size < 16 || workers < 1 {
		return errors.New("need -repo, -chunks >= -points >= 1, -bytes >= 16, -workers >= 1")
	}
	be, err := backends.Open(loc, backends.Options{Getenv: os.Getenv})
	if err != nil {
		return err
	}
	r, err := repo.Open(ctx, be, []byte(os.Getenv("HOLDFAST_PASSWORD")), repo.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.Lock(ctx, repo.LockShared)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release() }()
	seed := time.Now().UnixNano() // distinct from any earlier run
	ids := make([]repo.ChunkID, chunks)
	next := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := r.NewHasher()
			buf := make([]byte, size)
			for i := range next {
				binary.LittleEndian.PutUint64(buf, uint64(seed))
				binary.LittleEndian.PutUint64(buf[8:], uint64(i))
				ids[i] = h.Sum(buf)
				if _, err := r.PutChunk(ctx, ids[i], buf); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var failed error
	for i := 0; i < chunks && failed == nil; i++ {
		select {
		case next <- i:
		case failed = <-errc:
		}
	}
	close(next)
	wg.Wait()
	if failed != nil {
		return failed
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	if err := commitPoints(ctx, r, ids, points); err != nil {
		return err
	}
	fmt.Printf("%d chunks in %d points\n", chunks, points)
	return nil
}

// commitPoints shares ids out over points of one disk each and commits them.
func commitPoints(ctx context.Context, r *repo.Repository, ids []repo.ChunkID, points int) error {
	chunks := len(ids)
	cs := r.Config().ChunkSize
	per := chunks / points
	for p := range points {
		part := ids[p*per : (p+1)*per]
		if p == points-1 {
			part = ids[p*per:]
		}
		ix := &repo.Index{DiskSize: int64(len(part)) * int64(cs), ChunkSize: cs}
		for n, id := range part {
			ix.Entries = append(ix.Entries, repo.IndexEntry{N: uint64(n), ID: id})
		}
		m := &repo.Manifest{ID: r.NewPointID(), VM: "synth", Time: time.Now().Add(time.Duration(p-points) * time.Minute).UTC()}
		hash, err := r.SaveIndex(ctx, m.ID, 0, ix)
		if err != nil {
			return err
		}
		m.Disks = []repo.DiskManifest{{Index: 0, Size: ix.DiskSize, ChunkSize: cs, IndexHash: hash, Chunks: len(part)}}
		if err := r.CommitPoint(ctx, m); err != nil {
			return err
		}
	}
	return nil
}
