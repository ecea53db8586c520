package main

import (
	"encoding/json"

	"github.com/spf13/cobra"
)

// listSpec describes a "list" command: the API path, the table header and
// how one element becomes a row.
type listSpec[T any] struct {
	short, path, what string
	header            []string
	row               func(T) []string
}

// newListCommand builds a list command that prints the API's JSON with
// --json and an aligned table otherwise.
func newListCommand[T any](a *app, o *clientOptions, s listSpec[T]) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list", Short: s.short, Args: noArgs}
	c.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.call(cmd.Context(), "GET", s.path, s.what, nil, &raw); err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, raw)
		}
		var items []T
		if err := json.Unmarshal(raw, &items); err != nil {
			return err
		}
		rows := make([][]string, 0, len(items))
		for _, it := range items {
			rows = append(rows, s.row(it))
		}
		return table(a.stdout, s.header, rows)
	}
	return c
}
