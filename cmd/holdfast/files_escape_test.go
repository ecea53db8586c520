package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestfs"
)

// Guest names, symlink targets and errors naming them reach the terminal
// escaped: no control byte of a hostile guest is printed.
func TestFilesOutputEscapesGuestNames(t *testing.T) {
	const hostile = "evil\x1b]0;owned\x07\x1b[2J\rname"
	st := guestfs.Stat{Mode: fs.ModeSymlink | 0o777}
	es := []fileEntry{
		{Path: "/" + hostile, Stat: &fileStat{Stat: st, ModeString: st.Mode.String()}, Target: "/" + hostile},
		{Path: "/" + hostile, Error: "damaged " + hostile},
	}
	for _, long := range []bool{false, true} {
		var out bytes.Buffer
		a := &app{stdout: &out, stderr: &out}
		if err := a.printEntries(es, long, false); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(out.String(), "\x1b\x07\r") || !strings.Contains(out.String(), `evil\x1b]0;owned\a`) {
			t.Errorf("long %v: %q", long, out.String())
		}
	}
	err := errors.Join(fmt.Errorf("restore: %w", &fs.PathError{Op: "lstat", Path: "/" + hostile, Err: fs.ErrExist}), errors.New("second"))
	got := errorText(err)
	if strings.ContainsAny(got, "\x1b\x07\r") || !strings.Contains(got, "\nsecond") {
		t.Errorf("error text %q", got)
	}
}
