package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

func TestKeyFileWrapUnwrap(t *testing.T) {
	master := bytes.Repeat([]byte{3}, masterLen)
	kf, err := newKeyFile(master, []byte("pw"), true, fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(kf)
	kf2, err := parseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kf2.unwrap([]byte("pw")); err != nil || !bytes.Equal(got, master) {
		t.Fatalf("right password: %x, %v", got, err)
	}
	for _, pw := range []string{"", "pW", "pw "} {
		if _, err := kf2.unwrap([]byte(pw)); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("password %q: %v", pw, err)
		}
	}
	// A changed salt or nonce is a wrong password too, never a panic.
	kf2.Salt[0] ^= 1
	if _, err := kf2.unwrap([]byte("pw")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("changed salt: %v", err)
	}
}

// TestInitRejectsBadKDF: Init must not create a repository whose key file
// Open refuses, nor panic inside argon2.
func TestInitRejectsBadKDF(t *testing.T) {
	ctx := context.Background()
	for _, p := range []KDFParams{
		{Time: 1, Memory: 64, Threads: 0},
		{Time: 0, Memory: 64, Threads: 1},
		{Time: 21, Memory: 64, Threads: 1},
		{Time: 1, Memory: 4, Threads: 1},
		{Time: 1, Memory: 1<<20 + 1, Threads: 1},
	} {
		be := storage.NewLocal(filepath.Join(t.TempDir(), "repo"))
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("%+v: Init panicked: %v", p, v)
				}
			}()
			r, err := Init(ctx, be, []byte("pw"), InitOptions{Encrypted: true, KDF: p})
			if err == nil {
				r.Close()
				_, err := Open(ctx, be, []byte("pw"), Options{})
				t.Errorf("%+v: Init succeeded; Open then says %v", p, err)
			}
		}()
		if be.Exists() {
			t.Errorf("%+v: Init wrote files before failing", p)
		}
	}
	// Unencrypted repositories ignore the KDF.
	r, err := Init(ctx, storage.NewLocal(t.TempDir()), nil, InitOptions{KDF: KDFParams{Time: 1}})
	if err != nil {
		t.Fatalf("unencrypted: %v", err)
	}
	r.Close()
}
