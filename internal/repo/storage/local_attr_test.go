package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDescribeAttrError: why the immutable attribute cannot be set is
// told apart: the file system, or the missing capability.
func TestDescribeAttrError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{unix.ENOTTY, "file system does not support"},
		{unix.EOPNOTSUPP, "file system does not support"},
		{unix.EINVAL, "file system does not support"},
		{unix.EPERM, "CAP_LINUX_IMMUTABLE"},
		{unix.EIO, "cannot set the immutable attribute"},
	} {
		if got := describeAttrError(fmt.Errorf("ioctl: %w", c.err)).Error(); !strings.Contains(got, c.want) {
			t.Errorf("%v: %q, want %q", c.err, got, c.want)
		}
	}
}

// TestImmutableAttribute: with the attribute set (root on a file system
// that has it), a stored file cannot be removed, overwritten or renamed,
// and each refusal is ErrImmutable; cleared, it can.
func TestImmutableAttribute(t *testing.T) {
	l := NewLocal(t.TempDir())
	ctx := t.Context()
	if err := l.Save(ctx, "chunks/aa/x", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := l.ProbeImmutable(); err != nil {
		t.Skipf("no immutable attribute here: %v", err)
	}
	if err := l.SetImmutable("chunks/aa/x", true); err != nil {
		t.Fatal(err)
	}
	defer l.SetImmutable("chunks/aa/x", false) //nolint:errcheck // best effort for the clean-up
	for name, op := range map[string]func() error{
		"remove":    func() error { return l.Remove(ctx, "chunks/aa/x") },
		"overwrite": func() error { return l.Save(ctx, "chunks/aa/x", []byte("b")) },
		"rename":    func() error { return l.Rename(ctx, "chunks/aa/x", "chunks/aa/y") },
	} {
		if err := op(); !errorsIsImmutable(err) {
			t.Errorf("%s of an immutable file: %v, want ErrImmutable", name, err)
		}
	}
	if err := l.SetImmutable("chunks/aa/x", false); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(ctx, "chunks/aa/x"); err != nil {
		t.Fatal(err)
	}
}

func errorsIsImmutable(err error) bool {
	var ie *ImmutableError
	return errors.Is(err, ErrImmutable) && errors.As(err, &ie) && strings.Contains(err.Error(), "immutable attribute")
}
