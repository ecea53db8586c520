package main

import (
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/backends"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/spf13/cobra"
)

func newRepoCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "repo", Short: "Manage the repository"}
	c.AddCommand(newRepoInitCommand(a))
	c.AddCommand(newRepoCacheCommand(a))
	return c
}

type repoInitOptions struct {
	chunkSize   string
	compression string
	noEncrypt   bool
	asJSON      bool
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
	be, err := a.backend()
	if err != nil {
		return err
	}
	if err := backends.Prepare(cmd.Context(), be, false); err != nil {
		return err
	}
	var pw []byte
	if !o.noEncrypt {
		if pw, err = a.password(cmd.Context(), true); err != nil {
			return err
		}
	}
	r, err := repo.Init(cmd.Context(), be, pw, repo.InitOptions{ChunkSize: cs, Compression: o.compression, Encrypted: !o.noEncrypt})
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
	return nil
}
