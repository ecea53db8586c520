package main

import (
	"encoding/json"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
)

func newSourceCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "source", Short: "Sources the server backs up from (images, NBD endpoints, QEMU hosts)", Args: noArgs}
	addClientFlags(c, o)
	c.AddCommand(newSourceAdd(a, o), newSourceList(a, o))
	return c
}

func newSourceAdd(a *app, o *clientOptions) *cobra.Command {
	var kind, address string
	c := &cobra.Command{
		Use:   "add NAME --type image|nbd|qemu --address ADDR",
		Short: "Add a source: an image path, an NBD URL or a QMP socket directory / QEMU host",
		Args:  exactArgs(1),
	}
	c.Flags().StringVar(&kind, "type", "", "source type: image, nbd or qemu (required)")
	c.Flags().StringVar(&address, "address", "", "image path, nbd:// URL, or QMP socket directory / host (required)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		switch kind {
		case "image", "nbd", "qemu":
		default:
			return usageError{fmt.Errorf("--type %q: want image, nbd or qemu", kind)}
		}
		if address == "" {
			return usageError{fmt.Errorf("--address is required")}
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		def, err := json.Marshal(apitypes.SourceAddress{Address: address})
		if err != nil {
			return err
		}
		req := apitypes.SourceRequest{Name: args[0], Kind: kind, Definition: def}
		if err := cl.call(cmd.Context(), "POST", "/api/v1/sources", "add sources", req, nil); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "added source %s (%s %s)\n", args[0], kind, address)
		return err
	}
	return c
}

func newSourceList(a *app, o *clientOptions) *cobra.Command {
	return newListCommand(a, o, listSpec[apitypes.Source]{
		short: "List sources", path: "/api/v1/sources", what: "list sources",
		header: []string{"NAME", "TYPE", "ADDRESS"},
		row: func(s apitypes.Source) []string {
			var addr apitypes.SourceAddress
			_ = json.Unmarshal(s.Definition, &addr)
			return []string{s.Name, s.Kind, orDash(addr.Address)}
		},
	})
}
