package repo

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestLockNameCarriesTheLock: a lock's name is the lock — an exclusive one
// is empty — and readers take kind, holder and start from it.
func TestLockNameCarriesTheLock(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, false)
	for _, kind := range []string{LockShared, LockExclusive} {
		l, err := r.Lock(ctx, kind)
		if err != nil {
			t.Fatal(err)
		}
		size := fileSize(t, be, l.Info.name)
		if (kind == LockExclusive) != (size == 0) {
			t.Errorf("%s lock file of %d bytes", kind, size)
		}
		live, err := r.ActiveLocks(ctx)
		if err != nil || len(live) != 1 || live[0].Kind != kind || live[0].PID != os.Getpid() ||
			!live[0].Started.Equal(l.Info.Started) || live[0].Hostname != lockHostname() {
			t.Errorf("%s lock read back as %+v (%v), want %+v", kind, live, err, l.Info)
		}
		_ = l.Release()
	}
	// A dead process of this host holds nothing.
	dead := LockInfo{Kind: LockExclusive, Hostname: lockHostname(), PID: pidMax(t) + 1, Started: time.Now()}
	if err := be.Save(ctx, lockName(dead), nil); err != nil {
		t.Fatal(err)
	}
	if l, err := r.Lock(ctx, LockExclusive); err != nil {
		t.Fatalf("a dead holder's lock blocks: %v", err)
	} else {
		_ = l.Release()
	}
}

func FuzzParseLockName(f *testing.F) {
	f.Add(lockName(LockInfo{Kind: LockShared, Hostname: "host.example", PID: 42, Started: time.Unix(1, 2)}))
	f.Add("locks/0123456789abcdef")
	f.Add("locks/0123456789abcdef.exclusive.-1.-1.")
	f.Fuzz(func(t *testing.T, name string) {
		li, ok := parseLockName(name)
		if ok && li.Kind != LockShared && li.Kind != LockExclusive {
			t.Fatalf("%q parsed as kind %q", name, li.Kind)
		}
	})
}
