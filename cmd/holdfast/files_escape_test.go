package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestfs"
	"github.com/holdfast-backup/holdfast/internal/publish"
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

// publish's problems (tools' messages about guest volumes) are printed
// escaped.
func TestPublishProblemsEscaped(t *testing.T) {
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb}
	s := &publish.Session{ID: "pub-00000001", Problems: []string{"disk 0: gpt partition table: \x1b]0;owned\x07"}}
	if err := a.printPublished(s, false); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(errb.String(), "\x1b\x07") || !strings.Contains(errb.String(), `\x1b]0;owned\a`) {
		t.Errorf("stderr %q", errb.String())
	}
}
