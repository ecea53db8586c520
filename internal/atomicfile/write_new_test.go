package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteNew creates a file once and never replaces one.
func TestWriteNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := WriteNew(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat %v %v", st, err)
	}
	if err := WriteNew(path, []byte("other"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteNew: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "secret" {
		t.Errorf("content %q: an existing file was replaced", b)
	}
}
