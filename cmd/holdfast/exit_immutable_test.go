package main

import (
	"fmt"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// TestExitImmutable: a refusal of a hardened repository — from the
// storage, or from an agent on the wire — exits 8.
func TestExitImmutable(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("forget: %w", &storage.ImmutableError{What: "forget point 00aa"}),
		fmt.Errorf("retention: %w", &mover.StatusError{Status: 423, Code: "immutable", Message: "forget point 00aa: refused"}),
	} {
		if got := exitCode(err, false); got != exitImmutable {
			t.Errorf("%v: exit %d, want %d", err, got, exitImmutable)
		}
	}
}
