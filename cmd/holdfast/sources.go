package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// openSource opens a SOURCE argument: a path or file:// URL. Other schemes
// (nbd://, qemu://, vsphere://) plug in here.
func openSource(ctx context.Context, spec, format string) (source.Disk, error) {
	if i := strings.Index(spec, "://"); i > 0 && !strings.HasPrefix(spec, "file://") {
		return nil, usageError{fmt.Errorf("source %q: scheme %q is not supported by this build", spec, spec[:i])}
	}
	return file.Open(ctx, spec, file.Options{Format: format})
}

// openSources opens every source or none.
func openSources(ctx context.Context, specs []string, format string) ([]source.Disk, error) {
	var disks []source.Disk
	for _, s := range specs {
		d, err := openSource(ctx, s, format)
		if err != nil {
			closeDisks(disks)
			return nil, err
		}
		disks = append(disks, d)
	}
	return disks, nil
}

func closeDisks(disks []source.Disk) {
	for _, d := range disks {
		d.Close()
	}
}
