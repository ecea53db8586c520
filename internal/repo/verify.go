package repo

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
	"sync"
)

// Problem is one piece of damage verify found. Point and Disk are set when
// the damage affects a restore point; Offset/Length give the byte range of
// the disk that cannot be restored.
type Problem struct {
	Point  string `json:"point,omitempty"`
	VM     string `json:"vm,omitempty"`
	Disk   int    `json:"disk"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	File   string `json:"file,omitempty"`
	Error  string `json:"error"`
}

// VerifyOptions choose how deep verify goes.
type VerifyOptions struct {
	ReadData bool
	// Subset, with ReadData, reads only one part of the referenced chunks
	// (see Subset); the zero value reads them all.
	Subset   Subset
	Workers  int                     // 0: GOMAXPROCS
	Progress func(done, total int64) // chunk bytes checked so far (read-data)
}

// VerifyResult summarises a verify run.
type VerifyResult struct {
	Points  int `json:"points"`
	Chunks  int `json:"chunks"`
	Checked int `json:"chunks_read"`
	// Subset is the part of the chunks read ("3/10"); "" for all.
	Subset   string    `json:"read_data_subset,omitempty"`
	Problems []Problem `json:"problems"`
	// Warnings are findings that are not damage (a stray file under
	// points/ that is not a restore point).
	Warnings []string `json:"warnings,omitempty"`
}

// Verify checks every manifest and index, that every referenced chunk
// exists and, with ReadData, that every referenced chunk decrypts and hashes
// to its ID. Each damaged chunk is reported for every point, disk and byte
// range that uses it.
func (r *Repository) Verify(ctx context.Context, o VerifyOptions) (VerifyResult, error) {
	var res VerifyResult
	// Points first: a point committed meanwhile is not in the list, and every
	// chunk of a listed point was written before it, so it is in the listing.
	ms, damaged, err := r.ScanPoints(ctx)
	if err != nil {
		return res, err
	}
	if r.cfg.MAC == "" {
		res.Warnings = append(res.Warnings, "config has no authentication code (written by an older holdfast); the next backup or gc adds it")
	}
	for _, d := range damaged {
		if d.Stray {
			res.Warnings = append(res.Warnings, d.String())
			continue
		}
		res.Problems = append(res.Problems, Problem{Point: d.ID, Disk: -1, File: d.File, Error: d.Err.Error()})
	}
	// Indexes, then the chunk listing: every chunk of a listed point was
	// written before the point's manifest, so it is in the listing. The
	// referenced chunks are held in a ChunkSet (32 bytes each), presence in
	// a bitmap beside it, and the listing is streamed, not kept.
	users := &ChunkSetBuilder{}
	var loaded []pointDisk
	for _, m := range ms {
		res.Points++
		for d, dm := range m.Disks {
			if err := r.WalkIndex(ctx, m, d, &Index{}, users.addEntry); err != nil {
				res.Problems = append(res.Problems, Problem{Point: m.ID, VM: m.VM, Disk: d, Length: dm.Size,
					File: indexName(m.ID, d), Error: err.Error()})
				continue
			}
			loaded = append(loaded, pointDisk{m, d})
		}
	}
	set := users.Set()
	res.Chunks = set.Len()
	present, sizes, err := r.listReferenced(ctx, set, o.ReadData)
	if err != nil {
		return res, err
	}
	bad := make(map[ChunkID]string)
	set.All(func(pos int, id ChunkID) {
		if !present.has(pos) {
			bad[id] = chunkName(id) + ": missing"
		}
	})
	if o.ReadData {
		if err := o.Subset.check(); err != nil {
			return res, err
		}
		res.Subset = o.Subset.String()
		r.readAll(ctx, set, present, sizes, bad, o, &res)
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	if len(bad) == 0 {
		return res, nil
	}
	// Damage: read the indexes again, one at a time, for the byte ranges.
	for _, u := range loaded {
		ix, err := r.LoadIndex(ctx, u.m, u.disk)
		if err != nil {
			res.Problems = append(res.Problems, Problem{Point: u.m.ID, VM: u.m.VM, Disk: u.disk, Length: u.m.Disks[u.disk].Size,
				File: indexName(u.m.ID, u.disk), Error: err.Error()})
			continue
		}
		res.Problems = append(res.Problems, damageRanges(u.m, u.disk, ix, bad)...)
	}
	return res, nil
}

// Subset is part Part (0-based) of Of disjoint parts of the chunk IDs: a
// chunk is in part n when the big-endian number of its first four bytes
// is n modulo Of. Reading part (k mod Of) at run k reads every chunk over
// Of runs. The zero value is every chunk.
type Subset struct {
	Part, Of int
}

// Has reports whether id is in the subset.
func (s Subset) Has(id ChunkID) bool {
	if s.Of <= 1 {
		return true
	}
	return int(binary.BigEndian.Uint32(id[:4])%uint32(s.Of)) == s.Part
}

// String renders the subset as "PART/OF" counted from 1, "" for all.
func (s Subset) String() string {
	if s.Of <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Part+1, s.Of)
}

func (s Subset) check() error {
	if s.Of < 0 || s.Part < 0 || (s.Of > 0 && s.Part >= s.Of) {
		return fmt.Errorf("verify: invalid read-data subset part %d of %d", s.Part, s.Of)
	}
	return nil
}

// readAll reads every referenced, present chunk in parallel.
func (r *Repository) readAll(ctx context.Context, set *ChunkSet, present bitmap, sizes []uint32,
	bad map[ChunkID]string, o VerifyOptions, res *VerifyResult) {
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var total, done int64
	set.All(func(pos int, id ChunkID) {
		if o.Subset.Has(id) {
			total += int64(sizes[pos])
		}
	})
	var mu sync.Mutex
	ch := make(chan ChunkID)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := r.NewHasher()
			var buf []byte
			for id := range ch {
				plain, err := r.GetChunk(ctx, h, id, buf)
				if err == nil {
					buf = plain[:0]
				}
				mu.Lock()
				res.Checked++
				pos, _ := set.Pos(id)
				done += int64(sizes[pos])
				if err != nil && ctx.Err() == nil {
					bad[id] = err.Error()
				}
				if o.Progress != nil {
					o.Progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
	// Workers write bad: what to read comes from the presence bitmap.
	set.All(func(pos int, id ChunkID) {
		if !o.Subset.Has(id) || !present.has(pos) || ctx.Err() != nil {
			return
		}
		select {
		case ch <- id:
		case <-ctx.Done():
		}
	})
	close(ch)
	wg.Wait()
}

// damageRanges turns damaged chunks into coalesced byte ranges of a disk.
func damageRanges(m *Manifest, disk int, ix *Index, bad map[ChunkID]string) []Problem {
	var out []Problem
	for _, e := range ix.Entries {
		why, ok := bad[e.ID]
		if !ok {
			continue
		}
		off := int64(e.N) * int64(ix.ChunkSize)
		n := int64(ix.ChunkLen(e.N))
		if k := len(out) - 1; k >= 0 && out[k].Offset+out[k].Length == off && out[k].Error == why {
			out[k].Length += n
			continue
		}
		out = append(out, Problem{Point: m.ID, VM: m.VM, Disk: disk, Offset: off, Length: n,
			File: chunkName(e.ID), Error: why})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}
