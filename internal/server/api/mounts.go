package api

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/allowlist"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// mountCredentialValidity is how long a session's NBD client certificate
// is valid (the exports' certificate is valid as long, see internal/proxy).
const mountCredentialValidity = 90 * 24 * time.Hour

// secureMount applies the access rules of an Instant VM Recovery session
// to req: the allow list defaults to the requester's address (remote) and
// may be wider than allowlist.Narrow only for an administrator; NFS, which
// has no TLS and no client authentication, needs nfs_insecure; NBD gets a
// client certificate from a CA made for this session (whose key is dropped
// here), required by the exports, and returned for the requester alone.
func secureMount(req *taskproto.MountRequest, remote string, role configdb.Role) (*apitypes.MountCredentials, error) {
	allow, err := allowlist.Parse(req.Allow)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if len(allow) == 0 {
		if allow, err = allowlist.Host(remote); err != nil {
			return nil, badRequest("no allow list given and %v", err)
		}
	}
	if !allowlist.Narrow(allow) && role != configdb.RoleAdministrator {
		return nil, &apitypes.Error{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf(
			"allow list %s covers more than /%d of IPv4 or /%d of IPv6 addresses: only an administrator may export a point that widely "+
				"(name the hosts that need the disks, or give no allow list for your own address)",
			strings.Join(allowlist.Strings(allow), ","), allowlist.NarrowIPv4Bits, allowlist.NarrowIPv6Bits)}
	}
	req.Allow = allowlist.Strings(allow)
	if req.NFS && !req.NFSInsecure {
		return nil, badRequest("NFS has no TLS and no client authentication: every host in the allow list (%s) could read and write "+
			"the disks; set nfs_insecure to serve NFS anyway, or use NBD (TLS with a session certificate)", strings.Join(req.Allow, ","))
	}
	req.NBDClientCA = ""
	if req.NBD == "" {
		return nil, nil
	}
	ca, err := pki.NewSessionCA("Holdfast instant recovery client", mountCredentialValidity)
	if err != nil {
		return nil, err
	}
	issued, err := ca.IssueClient("instant-recovery")
	if err != nil {
		return nil, err
	}
	req.NBDClientCA = string(ca.CertPEM())
	return &apitypes.MountCredentials{ClientCert: string(issued.CertPEM), ClientKey: string(issued.KeyPEM), ClientCA: req.NBDClientCA}, nil
}

// startPublish publishes a point on a mount server: no network exports,
// so no allow list or credentials; the mount directory must be absolute.
func (s *Server) startPublish(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	if s.tasks == nil {
		return newError(http.StatusServiceUnavailable, "unavailable", "this server runs no tasks")
	}
	var req taskproto.PublishRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.MountDir != "" && !filepath.IsAbs(req.MountDir) {
		return badRequest("mount_dir %q is not an absolute path on the mount server", req.MountDir)
	}
	se, err := s.tasks.StartMount(r.Context(), taskproto.MountRequest{Point: req.Point, Password: req.Password,
		Mount: taskproto.Mount{Publish: true, MountDir: req.MountDir}})
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "point.publish", req.Point, map[string]any{"session": se.ID, "mount_dir": req.MountDir}); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, apitypes.Mount{Session: viewSession(se)})
	return nil
}
