package qemu

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/qmp"
	"github.com/holdfast-backup/holdfast/internal/source"
)

const tlsObject = "hf-tls"

// notFound reports whether QEMU said the object does not exist.
func notFound(err error) bool {
	if qmp.IsClass(err, qmp.ClassDeviceNotFound) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "not found") || strings.Contains(s, "cannot find") || strings.Contains(s, "no such")
}

// nbdServer is QEMU's NBD server for one session.
type nbdServer struct {
	transport source.Transport // hotadd, nbd or nbd+tls
	url       func(name string) string
}

// startNBD starts QEMU's NBD server: a unix socket in runDir for hotadd, or
// TCP on host (a free port) for nbd, with TLS when tlsDir is set.
func startNBD(ctx context.Context, c *qmp.Client, transport source.Transport, runDir, host, tlsDir string) (*nbdServer, error) {
	args := map[string]any{}
	srv := &nbdServer{transport: transport}
	if transport == source.TransportHotAdd {
		sock := filepath.Join(runDir, "nbd.sock")
		args["addr"] = map[string]any{"type": "unix", "data": map[string]string{"path": sock}}
		srv.url = func(name string) string { return "nbd+unix:///" + name + "?socket=" + sock }
	} else {
		port, err := freePort(host)
		if err != nil {
			return nil, err
		}
		args["addr"] = map[string]any{"type": "inet", "data": map[string]string{"host": host, "port": strconv.Itoa(port)}}
		scheme := "nbd"
		if tlsDir != "" {
			if err := addTLSObject(ctx, c, tlsDir); err != nil {
				return nil, err
			}
			args["tls-creds"] = tlsObject
			scheme, srv.transport = "nbds", source.TransportNBDTLS
		}
		hp := net.JoinHostPort(host, strconv.Itoa(port))
		srv.url = func(name string) string { return scheme + "://" + hp + "/" + name }
	}
	if err := c.Execute(ctx, "nbd-server-start", args, nil); err != nil {
		if tlsDir != "" {
			_ = c.Execute(ctx, "object-del", map[string]string{"id": tlsObject}, nil)
		}
		return nil, fmt.Errorf("start QEMU's NBD server: %w", err)
	}
	return srv, nil
}

func addTLSObject(ctx context.Context, c *qmp.Client, dir string) error {
	args := map[string]any{"qom-type": "tls-creds-x509", "id": tlsObject, "dir": dir, "endpoint": "server", "verify-peer": false}
	if err := c.Execute(ctx, "object-add", args, nil); err != nil {
		return fmt.Errorf("load TLS credentials from %s: %w", dir, err)
	}
	return nil
}

func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// addExport exports a node of disk i read-only with its frozen bitmap.
func addExport(ctx context.Context, c *qmp.Client, i int, node, base string) error {
	args := map[string]any{"type": "nbd", "id": exportID(i), "node-name": node,
		"name": exportName(i), "writable": false}
	if base != "" {
		args["bitmaps"] = []string{base}
	}
	if err := c.Execute(ctx, "block-export-add", args, nil); err != nil {
		return fmt.Errorf("export disk %d: %w", i, err)
	}
	return nil
}

// removeExport deletes an export (dropping any client) and waits for it.
func removeExport(ctx context.Context, c *qmp.Client, id string) error {
	sub := c.Subscribe("BLOCK_EXPORT_DELETED")
	defer sub.Close()
	err := c.Execute(ctx, "block-export-del", map[string]string{"id": id, "mode": "hard"}, nil)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return fmt.Errorf("delete export %s: %w", id, err)
	}
	if _, err := sub.Wait(ctx, "BLOCK_EXPORT_DELETED", qmp.MatchField("id", id)); err != nil {
		return fmt.Errorf("wait for export %s to go: %w", id, err)
	}
	return nil
}

// stopNBD stops the NBD server and drops the TLS object; both may be gone.
func stopNBD(ctx context.Context, c *qmp.Client) error {
	if err := c.Execute(ctx, "nbd-server-stop", nil, nil); err != nil && !strings.Contains(err.Error(), "not running") {
		return fmt.Errorf("stop NBD server: %w", err)
	}
	if err := c.Execute(ctx, "object-del", map[string]string{"id": tlsObject}, nil); err != nil && !notFound(err) {
		return fmt.Errorf("remove TLS object: %w", err)
	}
	return nil
}
