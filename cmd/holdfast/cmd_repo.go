package main

import (
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/backends"
	"github.com/spf13/cobra"
)

func newRepoCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "repo", Short: "Manage the repository"}
	c.AddCommand(newRepoInitCommand(a))
	c.AddCommand(newRepoRecoverCommand(a))
	c.AddCommand(newRepoCacheCommand(a))
	return c
}

type repoInitOptions struct {
	chunkSize   string
	compression string
	noEncrypt   bool
	asJSON      bool
	lockDays    int
	lockMode    string
}

func newRepoInitCommand(a *app) *cobra.Command {
	var o repoInitOptions
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a new repository (encrypted by default)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRepoInit(cmd, a, o)
		},
	}
	c.Flags().StringVar(&o.chunkSize, "chunk-size", "1MiB", "chunk size: a power of two from 256KiB to 8MiB")
	c.Flags().StringVar(&o.compression, "compression", repo.CompressionFast, "compression: none, fast, optimal or high")
	c.Flags().BoolVar(&o.noEncrypt, "no-encryption", false, "store data unencrypted (not recommended)")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the new repository as JSON")
	c.Flags().IntVar(&o.lockDays, "object-lock", 0, "object storage: lock every object a point needs for `DAYS` (S3 Object Lock; the bucket is created with it)")
	c.Flags().StringVar(&o.lockMode, "object-lock-mode", storage.ModeCompliance, "Object Lock mode: compliance (nobody can shorten it) or governance (a credential with the bypass permission can)")
	return c
}

func runRepoInit(cmd *cobra.Command, a *app, o repoInitOptions) error {
	cs, err := parseSize(o.chunkSize)
	if err == nil {
		err = repo.ValidateChunkSize(cs)
	}
	if err != nil {
		return usageError{err}
	}
	if err := repo.ValidateCompression(o.compression); err != nil {
		return usageError{err}
	}
	lock, err := objectLockOption(cmd, a, o)
	if err != nil {
		return err
	}
	be, err := a.backend()
	if err != nil {
		return err
	}
	if err := backends.Prepare(cmd.Context(), be, lock != nil); err != nil {
		return err
	}
	var pw []byte
	if !o.noEncrypt {
		if pw, err = a.password(cmd.Context(), true); err != nil {
			return err
		}
	}
	r, err := repo.Init(cmd.Context(), be, pw, repo.InitOptions{ChunkSize: cs, Compression: o.compression, Encrypted: !o.noEncrypt,
		ObjectLock: lock})
	if err != nil {
		return err
	}
	defer r.Close()
	cfg := r.Config()
	if o.asJSON {
		return printJSON(a.stdout, mustJSON(map[string]any{"id": cfg.ID, "location": be.Location(), "chunk_size": cfg.ChunkSize,
			"compression": cfg.Compression, "encryption": cfg.Encryption}))
	}
	fmt.Fprintf(a.stdout, "created repository %s at %s (chunk size %s, compression %s, encryption %s)\n",
		cfg.ID[:8], be.Location(), formatBytes(int64(cfg.ChunkSize)), cfg.Compression, cfg.Encryption)
	if lock != nil {
		fmt.Fprintf(a.stdout, "Object Lock: every object a point needs is locked for %d days (%s mode)\n", lock.Days, lock.Mode)
	}
	return nil
}

// objectLockOption reads --object-lock and --object-lock-mode (nil: no
// lock). A local repository is refused: files have no Object Lock.
func objectLockOption(cmd *cobra.Command, a *app, o repoInitOptions) (*repo.ObjectLock, error) {
	if !cmd.Flags().Changed("object-lock") {
		if cmd.Flags().Changed("object-lock-mode") {
			return nil, usageError{errors.New("--object-lock-mode needs --object-lock DAYS")}
		}
		return nil, nil
	}
	lock := &repo.ObjectLock{Days: o.lockDays, Mode: o.lockMode}
	if err := lock.Validate(); err != nil {
		return nil, usageError{err}
	}
	loc, err := a.repoLocation()
	if err != nil {
		return nil, err
	}
	if !backends.IsRemote(loc) {
		return nil, usageError{errors.New("--object-lock needs object storage (--repo s3://…); to make a local repository immutable, serve it with 'holdfast agent repository --immutable DAYS'")}
	}
	return lock, nil
}
