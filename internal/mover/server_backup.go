package mover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// touchWorkers touch the chunks of one "has" request in parallel (slow
// storage answers each touch with a round trip of its own).
const touchWorkers = 8

// has: POST sessions/{sid}/has. Body: raw chunk IDs; reply: bitmap of the
// stored ones, each of which is touched (kept by a concurrent GC).
func (s *Server) has(w http.ResponseWriter, r *http.Request, sess *session) error {
	if err := sess.requireActive(); err != nil {
		return err
	}
	b, err := readBody(w, r, MaxHasIDs*idLen)
	if err != nil {
		return err
	}
	ids, err := decodeIDs(b)
	if err != nil {
		return badRequest(err)
	}
	present, err := touchAll(r.Context(), sess.rp.r, ids)
	if err != nil {
		return err
	}
	writeBinary(w, encodeBitmap(present))
	return nil
}

func touchAll(ctx context.Context, r *repo.Repository, ids []repo.ChunkID) ([]bool, error) {
	present := make([]bool, len(ids))
	errs := make([]error, touchWorkers)
	var wg sync.WaitGroup
	for k := 0; k < touchWorkers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(ids) && errs[k] == nil; i += touchWorkers {
				present[i], errs[k] = r.TouchChunk(ctx, ids[i])
			}
		}()
	}
	wg.Wait()
	return present, errors.Join(errs...)
}

// putChunk: PUT sessions/{sid}/chunks/{id}. Body: the sealed blob. A
// chunk already stored is only touched; a new one is verified (opens with
// the repository key, hashes to id) before it is stored.
func (s *Server) putChunk(w http.ResponseWriter, r *http.Request, sess *session) error {
	id, err := repo.ParseChunkID(r.PathValue("id"))
	if err != nil {
		return badRequest(err)
	}
	if err := sess.requireActive(); err != nil {
		return err
	}
	// The body is read before waiting for a slot: a stream that waits
	// unread would hold HTTP/2 connection window the running uploads need.
	rr := sess.rp.r
	blob, err := readPooled(w, r, rr, MaxSealedChunk)
	if err != nil {
		return err
	}
	defer rr.Recycle(blob)
	start := s.o.Clock.Now()
	select {
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	case <-r.Context().Done():
		return context.Cause(r.Context())
	}
	if ok, err := rr.TouchChunk(r.Context(), id); err != nil {
		return err
	} else if ok {
		setStoreMicros(w, s.o.Clock.Since(start))
		writeJSON(w, http.StatusOK, chunkResponse{Existed: true, Stored: len(blob)})
		return nil
	}
	n, err := rr.PutSealedChunk(r.Context(), rr.NewHasher(), id, blob)
	if errors.Is(err, repo.ErrCorrupt) {
		return newAPIError(http.StatusUnprocessableEntity, codeCorrupt, "%v", err)
	}
	if err != nil {
		return err
	}
	setStoreMicros(w, s.o.Clock.Since(start))
	writeJSON(w, http.StatusCreated, chunkResponse{Stored: n})
	return nil
}

// setStoreMicros reports the agent's share of a chunk upload (from the
// complete body to the stored chunk) for the client's stage statistics.
func setStoreMicros(w http.ResponseWriter, took time.Duration) {
	w.Header().Set(storeMicrosHeader, strconv.FormatInt(took.Microseconds(), 10))
}

// putIndex: PUT sessions/{sid}/points/{point}/disks/{disk}/index. Body: the
// plain index. The point must not exist yet and belongs to this session
// from its first index on.
func (s *Server) putIndex(w http.ResponseWriter, r *http.Request, sess *session) error {
	point := r.PathValue("point")
	if !pointPattern.MatchString(point) {
		return badRequest(fmt.Errorf("invalid point id %q", point))
	}
	disk, err := parseDisk(r.PathValue("disk"))
	if err != nil {
		return badRequest(err)
	}
	if err := sess.requireActive(); err != nil {
		return err
	}
	b, err := readBody(w, r, s.o.MaxIndexBytes)
	if err != nil {
		return err
	}
	// Checked, not decoded: the agent holds the index in its stored form.
	if _, _, err := repo.CheckIndex(b); err != nil {
		return badRequest(err)
	}
	if err := s.claimPoint(r.Context(), sess, indexKey{point, disk}); err != nil {
		return err
	}
	hash, err := sess.rp.r.SaveIndexBytes(r.Context(), point, disk, b)
	if err != nil {
		return err
	}
	sess.mu.Lock()
	sess.indexes[indexKey{point, disk}] = hash
	sess.mu.Unlock()
	writeJSON(w, http.StatusOK, indexResponse{Hash: hash})
	return nil
}

// claimPoint makes sure no committed point and no other session uses the
// point ID (an index upload must never overwrite a committed point's
// index), and bounds the indexes of one session.
func (s *Server) claimPoint(ctx context.Context, sess *session, k indexKey) error {
	if err := pointFree(ctx, sess.rp.r, k.point); err != nil {
		return err
	}
	key := sess.rp.name + "/" + k.point
	s.mu.Lock()
	owner := s.owners[key]
	if owner == nil {
		s.owners[key] = sess
		sess.points = append(sess.points, key)
	}
	s.mu.Unlock()
	if owner != nil && owner != sess {
		return newAPIError(http.StatusConflict, codeConflict, "point %s belongs to another session", k.point)
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if _, ok := sess.indexes[k]; !ok && len(sess.indexes) >= maxSessionIndexes {
		return newAPIError(http.StatusConflict, codeConflict, "session has %d indexes, the maximum", len(sess.indexes))
	}
	return nil
}

// pointFree fails with 409 when the point is committed already.
func pointFree(ctx context.Context, r *repo.Repository, point string) error {
	_, err := r.LoadManifest(ctx, point)
	switch {
	case err == nil:
		return newAPIError(http.StatusConflict, codeConflict, "point %s exists", point)
	case errors.Is(err, repo.ErrPointNotFound):
		return nil
	}
	return err
}

// commit: POST sessions/{sid}/commit. Body: the manifest JSON. Every disk's
// index must have been uploaded in this session with the hash the manifest
// records. On success the lock is released; the session stays known until
// it expires, so a retried commit of the same point succeeds again.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, sess *session) error {
	b, err := readBody(w, r, maxManifestBody)
	if err != nil {
		return err
	}
	m, err := repo.UnmarshalManifest(b)
	if err != nil {
		return badRequest(err)
	}
	if done, err := sess.beginCommit(m); err != nil || done {
		if err == nil {
			writeJSON(w, http.StatusOK, commitResponse{Point: m.ID})
		}
		return err
	}
	ctx, cancel := detached(r.Context()) // a dropped connection must not stop a commit halfway
	defer cancel()
	err = pointFree(ctx, sess.rp.r, m.ID)
	if err == nil {
		err = sess.rp.r.CommitPoint(ctx, m)
	}
	lock := sess.finishCommit(m.ID, err)
	if err != nil {
		return err
	}
	if lock != nil {
		if err := lock.Release(); err != nil {
			s.log.Warn("mover: release lock after commit", "repo", sess.rp.name, "err", err)
		}
	}
	s.log.Info("mover point committed", "repo", sess.rp.name, "session", sess.id[:8], "point", m.ID, "vm", m.VM)
	writeJSON(w, http.StatusOK, commitResponse{Point: m.ID})
	return nil
}

// beginCommit checks the manifest against the session and marks the commit
// in progress. done means the same point was committed already.
func (sess *session) beginCommit(m *repo.Manifest) (done bool, err error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	switch sess.state {
	case stateCommitted:
		if sess.committed == m.ID {
			return true, nil
		}
		return false, newAPIError(http.StatusConflict, codeConflict, "session committed point %s already", sess.committed)
	case stateCommitting:
		return false, newAPIError(http.StatusServiceUnavailable, codeBusy, "commit in progress")
	}
	for i, d := range m.Disks {
		h, ok := sess.indexes[indexKey{m.ID, i}]
		if !ok {
			return false, newAPIError(http.StatusConflict, codeConflict, "index of point %s disk %d not uploaded in this session", m.ID, i)
		}
		if h != d.IndexHash {
			return false, newAPIError(http.StatusConflict, codeConflict, "index of point %s disk %d has hash %s, manifest says %s", m.ID, i, h, d.IndexHash)
		}
	}
	sess.state = stateCommitting
	return false, nil
}

// finishCommit records the outcome; on success it hands back the lock to
// release.
func (sess *session) finishCommit(point string, err error) *repo.Lock {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if err != nil {
		sess.state = stateActive
		return nil
	}
	sess.state, sess.committed = stateCommitted, point
	lock := sess.lock
	sess.lock = nil
	return lock
}
