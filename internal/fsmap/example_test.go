package fsmap_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/fsmap"
)

// A disk that is one swap volume: everything after the header page can
// be left out.
func ExampleFind() {
	disk := make([]byte, 1<<20)
	copy(disk[4096-10:], "SWAPSPACE2")
	m, err := fsmap.Find(context.Background(), bytes.NewReader(disk), int64(len(disk)), fsmap.Options{Free: true, Swap: true})
	if err != nil {
		panic(err)
	}
	for _, r := range m.Ranges {
		fmt.Printf("%s: %d bytes at %d\n", r.Reason, r.Length, r.Offset)
	}
	// Output: swap: 1044480 bytes at 4096
}
