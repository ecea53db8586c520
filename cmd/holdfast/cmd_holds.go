package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/spf13/cobra"
)

func newHoldsCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "holds", Short: "List or release holds: restore points kept from forget and gc while in use",
		Long: `List or release holds. An instant recovery session holds the point it serves
(holds/<point>/<session> in the repository): forget, the server's retention
and gc keep the point and its chunks until the session ends (stop --discard,
or migrate). A session that cannot end that way any more (its host is gone)
leaves a stale hold: release it here. Holds are plain files; no password is
needed.`,
		Args: noArgs}
	c.AddCommand(newHoldsList(a), newHoldsRelease(a))
	return c
}

// holdsBackend is the repository's storage, without opening it.
func (a *app) holdsBackend(ctx context.Context) (storage.Backend, error) {
	be, err := a.backend()
	if err != nil {
		return nil, err
	}
	if _, err := be.Stat(ctx, "config"); err != nil {
		return nil, fmt.Errorf("%s: %w", be.Location(), repo.ErrNotInitialized)
	}
	return be, nil
}

func newHoldsList(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list [--json]", Short: "List the holds", Args: noArgs}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		be, err := a.holdsBackend(cmd.Context())
		if err != nil {
			return err
		}
		hs, err := repo.ListHolds(cmd.Context(), be, "holds")
		if err != nil {
			return err
		}
		if asJSON {
			if hs == nil {
				hs = []repo.Hold{}
			}
			return printJSON(a.stdout, mustJSON(hs))
		}
		var rows [][]string
		for _, h := range hs {
			rows = append(rows, []string{h.Point, h.Holder, h.Who, h.Since.Local().Format("2006-01-02 15:04:05"), h.Why})
		}
		return table(a.stdout, []string{"POINT", "HOLDER", "WHO", "SINCE", "WHY"}, rows)
	}
	return c
}

func newHoldsRelease(a *app) *cobra.Command {
	c := &cobra.Command{Use: "release POINT HOLDER", Short: "Release a (stale) hold: POINT is an ID or unique prefix",
		Args: exactArgs(2)}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		be, err := a.holdsBackend(ctx)
		if err != nil {
			return err
		}
		hs, err := repo.ListHolds(ctx, be, "holds")
		if err != nil {
			return err
		}
		var match []repo.Hold
		for _, h := range hs {
			if strings.HasPrefix(h.Point, args[0]) && h.Holder == args[1] {
				match = append(match, h)
			}
		}
		switch len(match) {
		case 0:
			return fmt.Errorf("no hold %s on a point %s…: see holdfast holds list", args[1], args[0])
		case 1:
		default:
			return usageError{fmt.Errorf("%s matches %d held points: give more of the ID", args[0], len(match))}
		}
		if err := repo.ReleaseHold(ctx, be, match[0].Point, match[0].Holder); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "released hold %s on point %s (%s)\n", match[0].Holder, match[0].Point, match[0].Why)
		return err
	}
	return c
}
