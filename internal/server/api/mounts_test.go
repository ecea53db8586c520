package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// TestStartMountAccess: who may export a point to whom. The allow list
// defaults to the requester's address (httptest's 192.0.2.1); lists wider
// than a /24 (IPv4) or /64 (IPv6) need an administrator; NFS needs
// nfs_insecure; NBD gets a session client certificate the exports require.
func TestStartMountAccess(t *testing.T) {
	e := newEnv(t)
	ro, admin := e.tokens[configdb.RoleRestoreOperator], e.tokens[configdb.RoleAdministrator]
	for _, c := range []struct {
		name      string
		token     string
		body      string
		status    int
		msg       string   // in the error
		wantAllow []string // what the mount server gets
		wantTLS   bool
	}{
		{"default: the requester alone", ro, `{"point":"p1","nbd":"0.0.0.0:10809"}`, 202, "", []string{"192.0.2.1/32"}, true},
		{"operator, one /24", ro, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["10.1.2.0/24"]}`, 202, "", []string{"10.1.2.0/24"}, true},
		{"operator, hosts", ro, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["10.1.2.3","2001:db8::/64"]}`, 202, "",
			[]string{"10.1.2.3/32", "2001:db8::/64"}, true},
		{"operator, everyone", ro, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["0.0.0.0/0"]}`, 403, "only an administrator", nil, false},
		{"operator, a /16", ro, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["10.1.0.0/16"]}`, 403, "only an administrator", nil, false},
		{"operator, two /24", ro, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["10.1.2.0/24","10.1.3.0/24"]}`, 403, "only an administrator", nil, false},
		{"operator, IPv6 /48", ro, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["2001:db8::/48"]}`, 403, "only an administrator", nil, false},
		{"administrator, everyone", admin, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["0.0.0.0/0","::/0"]}`, 202, "",
			[]string{"0.0.0.0/0", "::/0"}, true},
		{"backup operator", e.tokens[configdb.RoleBackupOperator], `{"point":"p1","nbd":"0.0.0.0:10809"}`, 403, "may not", nil, false},
		{"bad entry", ro, `{"point":"p1","nbd":"0.0.0.0:10809","allow":["everyone"]}`, 400, "not a CIDR", nil, false},
		{"NFS without the acknowledgement", ro, `{"point":"p1","nfs":true}`, 400, "nfs_insecure", nil, false},
		{"NFS acknowledged", ro, `{"point":"p1","nfs":true,"nfs_insecure":true}`, 202, "", []string{"192.0.2.1/32"}, false},
		{"a client CA from the request is replaced", ro, `{"point":"p1","nbd":"0.0.0.0:10809","nbd_client_ca":"mine"}`, 202, "",
			[]string{"192.0.2.1/32"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.broker.mu.Lock()
			e.broker.mounts = nil
			e.broker.mu.Unlock()
			rec := e.do(c.token, "POST", "/api/v1/instant-recoveries", c.body)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.msg) {
				t.Fatalf("status %d %s, want %d with %q", rec.Code, rec.Body, c.status, c.msg)
			}
			e.broker.mu.Lock()
			mounts := e.broker.mounts
			e.broker.mu.Unlock()
			if c.status != 202 {
				if len(mounts) != 0 {
					t.Fatalf("refused, yet the session was started: %+v", mounts)
				}
				return
			}
			if len(mounts) != 1 || !slices.Equal(mounts[0].Allow, c.wantAllow) {
				t.Fatalf("mount requests %+v, want allow %v", mounts, c.wantAllow)
			}
			var view struct {
				ID     int64 `json:"id"`
				NBDTLS *struct {
					ClientCert string `json:"client_cert"`
					ClientKey  string `json:"client_key"`
				} `json:"nbd_tls"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &view); err != nil || view.ID == 0 {
				t.Fatalf("answer %s: %v", rec.Body, err)
			}
			if !c.wantTLS {
				if view.NBDTLS != nil || mounts[0].NBDClientCA != "" {
					t.Errorf("NBD credentials without NBD: %+v", view.NBDTLS)
				}
				return
			}
			if view.NBDTLS == nil || !strings.Contains(view.NBDTLS.ClientKey, "PRIVATE KEY") {
				t.Fatalf("no NBD client credentials in %s", rec.Body)
			}
			// The certificate chains to the CA the mount server requires.
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM([]byte(mounts[0].NBDClientCA)) {
				t.Fatalf("client CA %q", mounts[0].NBDClientCA)
			}
			cert, err := pki.ParseCertificatePEM([]byte(view.NBDTLS.ClientCert))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("client certificate: %v", err)
			}
			// Kept nowhere: not in the logs, the audit log or the session.
			audit := e.mustDo(admin, "GET", "/api/v1/audit?limit=1000", "", 200).Body.String()
			se, err := e.store.GetSession(context.Background(), view.ID)
			if err != nil {
				t.Fatal(err)
			}
			for where, text := range map[string]string{"log": e.logs.String(), "audit": audit, "session": string(se.Result)} {
				if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, strings.TrimSpace(view.NBDTLS.ClientKey)[40:80]) {
					t.Errorf("the client key is in the %s", where)
				}
			}
		})
	}
}

// TestCancelMountInUse: cancelling an Instant VM Recovery session whose
// mount server reported clients is refused (409 in_use, naming them)
// unless ?force=true; other sessions are cancelled as before.
func TestCancelMountInUse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	se, err := e.store.CreateSession(ctx, "", "instant-recovery")
	if err != nil {
		t.Fatal(err)
	}
	res := `{"serving":{"clients":[{"protocol":"nbd","address":"10.0.0.5:40312","export":"disk-0"}],` +
		`"in_use":"1 client(s): nbd 10.0.0.5:40312 (disk-0, since 2026-11-22 06:00:00 UTC)"}}`
	if _, err := e.store.UpdateSession(ctx, se.ID, configdb.StateRunning, json.RawMessage(res)); err != nil {
		t.Fatal(err)
	}
	op := e.tokens[configdb.RoleBackupOperator]
	path := fmt.Sprintf("/api/v1/sessions/%d/cancel", se.ID)
	rec := e.do(op, "POST", path, "")
	checkError(t, rec, http.StatusConflict, "in_use")
	if body := rec.Body.String(); !strings.Contains(body, fmt.Sprintf("session %d is in use by 1 client(s): nbd 10.0.0.5:40312 (disk-0", se.ID)) {
		t.Errorf("refusal: %s", body)
	}
	if cur, _ := e.store.GetSession(ctx, se.ID); cur.State != configdb.StateRunning {
		t.Fatalf("the refused cancel ended the session: %s", cur.State)
	}
	e.mustDo(op, "POST", path+"?force=true", "", http.StatusOK)

	// Without clients reported, no force is needed.
	se2, _ := e.store.CreateSession(ctx, "", "instant-recovery")
	if _, err := e.store.UpdateSession(ctx, se2.ID, configdb.StateRunning, json.RawMessage(`{"serving":{"clients":[]}}`)); err != nil {
		t.Fatal(err)
	}
	e.mustDo(op, "POST", fmt.Sprintf("/api/v1/sessions/%d/cancel", se2.ID), "", http.StatusOK)
}

// TestStartPublish: a publication is a mount request with Publish set and
// no network exports; the mount directory must be absolute; restore
// operators may, backup operators may not.
func TestStartPublish(t *testing.T) {
	e := newEnv(t)
	ro := e.tokens[configdb.RoleRestoreOperator]
	for _, c := range []struct {
		name, token, body string
		status            int
		msg               string
	}{
		{"default mount dir", ro, `{"point":"p1"}`, 202, ""},
		{"mount dir", ro, `{"point":"p1","mount_dir":"/srv/scan"}`, 202, ""},
		{"relative mount dir", ro, `{"point":"p1","mount_dir":"scan"}`, 400, "not an absolute path"},
		{"backup operator", e.tokens[configdb.RoleBackupOperator], `{"point":"p1"}`, 403, "may not"},
		{"unknown field", ro, `{"point":"p1","nbd":"0.0.0.0:10809"}`, 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.broker.mu.Lock()
			e.broker.mounts = nil
			e.broker.mu.Unlock()
			rec := e.do(c.token, "POST", "/api/v1/publications", c.body)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.msg) {
				t.Fatalf("status %d %s, want %d with %q", rec.Code, rec.Body, c.status, c.msg)
			}
			e.broker.mu.Lock()
			mounts := e.broker.mounts
			e.broker.mu.Unlock()
			if c.status != 202 {
				if len(mounts) != 0 {
					t.Fatalf("refused, yet the session was started: %+v", mounts)
				}
				return
			}
			if len(mounts) != 1 || !mounts[0].Publish || mounts[0].NBD != "" || mounts[0].NFS || len(mounts[0].Allow) != 0 ||
				mounts[0].Point != "p1" || !strings.Contains(c.body, mounts[0].MountDir) {
				t.Fatalf("mount requests %+v", mounts)
			}
		})
	}
}
