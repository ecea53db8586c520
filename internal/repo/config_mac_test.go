package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// editConfig rewrites the config file through fn (on its JSON fields).
func editConfig(t *testing.T, be *storage.Local, fn func(map[string]any)) {
	t.Helper()
	p := filePath(be, "config")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	fn(c)
	if b, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfigTamperingIsDetected: every field of the config is
// authenticated; an edit is a damaged config (ErrCorrupt), never a wrong
// password, for encrypted and plain repositories.
func TestConfigTamperingIsDetected(t *testing.T) {
	edits := []struct {
		name string
		edit func(map[string]any)
	}{
		{"chunk size", func(c map[string]any) { c["chunk_size"] = 2 * MinChunkSize }},
		{"id", func(c map[string]any) { c["id"] = strings.Repeat("ab", 16) }},
		{"compression", func(c map[string]any) { c["compression"] = CompressionNone }},
		{"created", func(c map[string]any) { c["created"] = "2001-01-01T00:00:00Z" }},
		{"encryption", func(c map[string]any) {
			if c["encryption"] == EncryptionNone {
				c["encryption"] = EncryptionAESGCM
			} else {
				c["encryption"] = EncryptionNone
			}
		}},
		{"mac", func(c map[string]any) { c["mac"] = strings.Repeat("0", 64) }},
	}
	for _, encrypted := range []bool{true, false} {
		for _, tc := range edits {
			t.Run(tc.name+map[bool]string{true: " encrypted", false: " plain"}[encrypted], func(t *testing.T) {
				_, be := newTestRepo(t, encrypted)
				editConfig(t, be, tc.edit)
				// With the password, and for an encryption edit also
				// without (what holdfast does when the config claims none).
				pws := []string{"secret"}
				if tc.name == "encryption" {
					pws = append(pws, "")
				}
				for _, pw := range pws {
					_, err := Open(context.Background(), be, []byte(pw), Options{})
					if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrWrongPassword) {
						t.Errorf("password %q: open after editing %s: %v, want ErrCorrupt", pw, tc.name, err)
					}
				}
			})
		}
	}
}

// TestConfigWithoutMAC: a config written before configs carried a MAC
// opens (with a verify warning); the next lock holder adds the MAC, after
// which an edit is detected.
func TestConfigWithoutMAC(t *testing.T) {
	ctx := context.Background()
	_, be := newTestRepo(t, true)
	editConfig(t, be, func(c map[string]any) { delete(c, "mac") })
	r, err := Open(ctx, be, []byte("secret"), Options{})
	if err != nil {
		t.Fatalf("open a config without a MAC: %v", err)
	}
	defer r.Close()
	vr, err := r.Verify(ctx, VerifyOptions{})
	if err != nil || len(vr.Problems) != 0 || len(vr.Warnings) != 1 || !strings.Contains(vr.Warnings[0], "authentication") {
		t.Fatalf("verify: %+v %v", vr, err)
	}
	l, err := r.Lock(ctx, LockShared)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Release()
	editConfig(t, be, func(c map[string]any) {
		if c["mac"] == nil {
			t.Fatal("the lock holder did not add the MAC")
		}
		c["chunk_size"] = 2 * MinChunkSize
	})
	if _, err := Open(ctx, be, []byte("secret"), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open after editing the sealed config: %v", err)
	}
}
