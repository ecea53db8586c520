package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/pipeline"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/spf13/cobra"
)

// viaServer reports whether a command that works on a repository or
// through a server goes through the server. The flags decide: --server
// goes through the server, --repo to the repository (both: a usage
// error). Without either, HOLDFAST_REPOSITORY wins over HOLDFAST_SERVER;
// when both are set, a note on stderr says which is used and how to
// choose.
func (a *app) viaServer(o *clientOptions) (bool, error) {
	switch {
	case a.repoDir != "" && o.server != "":
		return false, usageError{errors.New("give --repo or --server, not both")}
	case a.repoDir != "":
		return false, nil
	case o.server != "":
		return true, nil
	}
	repoEnv, serverEnv := a.getenv("HOLDFAST_REPOSITORY"), a.getenv("HOLDFAST_SERVER")
	if repoEnv != "" && serverEnv != "" {
		fmt.Fprintf(a.stderr, "holdfast: HOLDFAST_REPOSITORY and HOLDFAST_SERVER are both set: using the repository %s "+
			"(give --server to go through the server, --repo to choose the repository)\n", repoEnv)
	}
	return repoEnv == "" && serverEnv != "", nil
}

// absFlag refuses a relative path in a flag whose path is read on another
// host (a proxy): it would resolve in that process's working directory,
// not the caller's.
func absFlag(flag, path string) error {
	if filepath.IsAbs(path) {
		return nil
	}
	return usageError{fmt.Errorf("%s %q: through the server a path is used on the proxy's host, where a relative one "+
		"would resolve in the proxy's working directory: give an absolute path", flag, path)}
}

// runServerRestore asks the server to restore a disk through a proxy and
// waits for the session. The request stays open until a proxy takes the
// restore: if this command goes away first, the server cancels it, so it
// never runs later unattended. Interrupted after that, the command cancels
// the running session (the proxy leaves a file target as it was).
func runServerRestore(cmd *cobra.Command, a *app, co *clientOptions, o restoreOptions, point string) error {
	switch {
	case o.to == "":
		return usageError{errors.New("--to PATH is required")}
	case o.rollback:
		return usageError{errors.New("--rollback is not available through the server yet; restore with --repo on the host holding the disk")}
	}
	if f, err := o.format(); err != nil {
		return err
	} else if byName, _ := pipeline.TargetFormat(o.to, ""); f != byName {
		return usageError{fmt.Errorf("--to-format %s: through the server the proxy writes qcow2 for a .qcow2 name, else raw", f)}
	}
	if err := absFlag("--to", o.to); err != nil {
		return err
	}
	to := o.to
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	pw, err := a.jobPassword(cmd.Context())
	if err != nil {
		return err
	}
	req := taskproto.RestoreRequest{Point: point, Disk: o.disk, Target: to, Force: o.force, Password: pw}
	fmt.Fprintf(a.stderr, "holdfast: waiting for a proxy to take the restore (interrupting cancels it)\n")
	var se apitypes.Session
	if err := cl.untimed().call(cmd.Context(), "POST", "/api/v1/restores", "restore", req, &se); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "holdfast: restore session %d taken by a proxy\n", se.ID)
	err = a.waitSession(cmd.Context(), cl, se.ID, o.asJSON)
	if cmd.Context().Err() != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 10*time.Second)
		defer cancel()
		path := "/api/v1/sessions/" + strconv.FormatInt(se.ID, 10) + "/cancel"
		if cerr := cl.call(ctx, "POST", path, "cancel sessions", nil, nil); cerr != nil {
			fmt.Fprintf(a.stderr, "holdfast: restore session %d goes on: %v\n", se.ID, cerr)
		} else {
			fmt.Fprintf(a.stderr, "holdfast: restore session %d cancelled\n", se.ID)
		}
	}
	return err
}

// untimed returns a copy of the client whose calls have no overall time
// limit, for requests the server holds open until something happens (the
// context still ends them).
func (c *apiClient) untimed() *apiClient {
	hc := *c.HTTPClient()
	hc.Timeout = 0
	return &apiClient{c.WithHTTPClient(&hc)}
}
