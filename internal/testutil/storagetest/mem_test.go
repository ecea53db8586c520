package storagetest

import (
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

func TestMem(t *testing.T) {
	Run(t, func(*testing.T) storage.Backend { return NewMem() })
}

// TestFaultyTransparent: without faults the wrapper keeps the contract.
func TestFaultyTransparent(t *testing.T) {
	Run(t, func(*testing.T) storage.Backend { return NewFaulty(NewMem()) })
}
