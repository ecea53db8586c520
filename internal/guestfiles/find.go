package guestfiles

import (
	"fmt"
	"path"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/guestfs"
)

// Find calls fn for every entry of f whose name or path (from the root,
// with a leading "/") matches the glob pattern (path.Match syntax).
func Find(f *guestfs.FS, pattern string, fn func(p string, st guestfs.Stat) error) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", pattern, err)
	}
	full := strings.HasPrefix(pattern, "/")
	return f.Walk(".", func(p string, st guestfs.Stat, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		subject := path.Base(p)
		if full || strings.Contains(pattern, "/") {
			subject = "/" + p
			if !full {
				subject = p
			}
		}
		if ok, _ := path.Match(pattern, subject); ok {
			return fn("/"+p, st)
		}
		return nil
	})
}
