package nbd

import (
	"context"
	"errors"
	"fmt"
)

// ListExports connects to the server named by rawURL (the export part is
// ignored) and returns its exports (NBD_OPT_LIST).
func ListExports(ctx context.Context, rawURL string, opts ClientOptions) ([]ExportEntry, error) {
	var out []ExportEntry
	err := withHandshake(ctx, rawURL, opts, false, func(h *clientHandshake, _ string) error {
		var err error
		out, err = h.list()
		return err
	})
	return out, err
}

// GetInfo returns the details of the export named by rawURL without
// entering the transmission phase (NBD_OPT_INFO).
func GetInfo(ctx context.Context, rawURL string, opts ClientOptions) (ExportInfo, error) {
	var out ExportInfo
	err := withHandshake(ctx, rawURL, opts, false, func(h *clientHandshake, export string) error {
		var err error
		out, err = h.info(optInfo, export)
		return err
	})
	return out, err
}

// ListMetaContexts returns the meta contexts the server offers for the
// export named by rawURL (NBD_OPT_LIST_META_CONTEXT). With no queries the
// server lists all it knows; a query such as "qemu:dirty-bitmap:" lists
// one namespace.
func ListMetaContexts(ctx context.Context, rawURL string, opts ClientOptions, queries ...string) ([]string, error) {
	var out []string
	err := withHandshake(ctx, rawURL, opts, true, func(h *clientHandshake, export string) error {
		var err error
		_, out, err = h.metaContexts(optListMetaContext, export, queries)
		return err
	})
	return out, err
}

// withHandshake dials rawURL, negotiates TLS (and structured replies when
// asked), runs fn and ends the session with NBD_OPT_ABORT.
func withHandshake(ctx context.Context, rawURL string, opts ClientOptions, structured bool, fn func(*clientHandshake, string) error) error {
	u, conn, err := dialURL(ctx, rawURL, &opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = withDeadline(ctx, conn, func() error {
		h, err := startClientHandshake(conn)
		if err != nil {
			return err
		}
		if !h.fixed {
			return errors.New("nbd: server does not support fixed newstyle negotiation")
		}
		if opts.TLSConfig != nil {
			if err := h.startTLS(ctx, opts.TLSConfig); err != nil {
				return err
			}
		}
		if structured {
			ok, err := h.structuredReply()
			if err != nil || !ok {
				return errors.Join(errors.New("nbd: server refused structured replies"), err)
			}
		}
		if err := fn(h, u.Export); err != nil {
			return err
		}
		h.abort()
		return nil
	})
	if err != nil {
		return fmt.Errorf("nbd: query %s: %w", rawURL, err)
	}
	return nil
}
