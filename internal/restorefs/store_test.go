package restorefs_test

import (
	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// Both the local repository and the remote repository agent are stores.
var (
	_ restorefs.Store = (*repo.Repository)(nil)
	_ restorefs.Store = (*mover.Client)(nil)
)
