package api

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestVSphereSource: a vSphere source stores its password file's path on
// the server host, never a password; a missing file is refused, one others
// may read is accepted with a warning, and the password is in no response
// or log.
func TestVSphereSource(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleBackupOperator]
	dir := t.TempDir()
	const pw = "vc-S3cret!"
	private, open := filepath.Join(dir, "private"), filepath.Join(dir, "open")
	for p, mode := range map[string]os.FileMode{private: 0o600, open: 0o644} {
		if err := os.WriteFile(p, []byte(pw+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	src := func(name, file, extra string) string {
		return `{"name":"` + name + `","kind":"vsphere","definition":{"address":"vsphere://backup@vc.example:8443","password_file":"` +
			file + `"` + extra + `}}`
	}
	ok := decodeBody[apitypes.Source](t, e.mustDo(op, "POST", "/api/v1/sources", src("vc1", private, `,"insecure":true`), 201))
	if len(ok.Warnings) != 0 || !strings.Contains(string(ok.Definition), private) {
		t.Errorf("source %+v: %s", ok, ok.Definition)
	}
	warned := decodeBody[apitypes.Source](t, e.mustDo(op, "POST", "/api/v1/sources", src("vc2", open, ""), 201))
	if len(warned.Warnings) != 1 || !strings.Contains(warned.Warnings[0], "0644") || !strings.Contains(e.logs.String(), "0644") {
		t.Errorf("a password file others may read: %+v; log %s", warned, e.logs.String())
	}
	for _, tc := range []struct{ body, msg string }{
		{src("vc3", filepath.Join(dir, "missing"), ""), "no such file"},
		{src("vc3", "pw", ""), "absolute path"},
		{src("vc3", private, `,"password":"`+pw+`"`), "unknown field"},
		{`{"name":"vc3","kind":"vsphere","password":"` + pw + `","definition":{"address":"vsphere://u@vc","password_file":"` + private + `"}}`, "takes no password"},
		{src("vc3", private, `,"insecure":true,"tls_thumbprint":"00"`), "one of"},
		{`{"name":"vc3","kind":"vsphere","definition":{"address":"vsphere://u@vc/DC0/vm/x","password_file":"` + private + `"}}`, "jobs select the VMs"},
	} {
		rec := e.do(op, "POST", "/api/v1/sources", tc.body)
		checkError(t, rec, 400, "invalid_request")
		if !strings.Contains(rec.Body.String(), tc.msg) {
			t.Errorf("%s: %s, want %q", tc.body, rec.Body, tc.msg)
		}
	}
	e.mustDo(op, "GET", "/api/v1/sources", "", 200)
	e.mustDo(op, "GET", "/api/v1/sources/vc1", "", 200)
	for where, text := range map[string]string{"a response body": e.bodies.String(), "the server log": e.logs.String()} {
		if strings.Contains(text, pw) {
			t.Errorf("the vSphere password appears in %s", where)
		}
	}
}

// TestLibvirtSource: a libvirt source stores its connection URIs and
// proxy; a faulty URI, a password and unknown keys are refused, a proxy
// that has not joined is a warning.
func TestLibvirtSource(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleBackupOperator]
	if _, err := e.store.UpsertAgent(context.Background(), configdb.Agent{Role: configdb.AgentProxy, Name: "kvm1"}); err != nil {
		t.Fatal(err)
	}
	src := func(name, def string) string {
		return `{"name":"` + name + `","kind":"libvirt","definition":` + def + `}`
	}
	ok := decodeBody[apitypes.Source](t, e.mustDo(op, "POST", "/api/v1/sources",
		src("lv1", `{"address":"qemu+unix:///system?socket=/run/kvm1/libvirt-sock","proxy":"kvm1"}`), 201))
	if len(ok.Warnings) != 0 || ok.Kind != "libvirt" || !strings.Contains(string(ok.Definition), `"kvm1"`) {
		t.Errorf("source %+v: %s", ok, ok.Definition)
	}
	warned := decodeBody[apitypes.Source](t, e.mustDo(op, "POST", "/api/v1/sources",
		src("lv2", `{"address":"qemu:///system","proxy":"kvm9"}`), 201))
	if len(warned.Warnings) != 1 || !strings.Contains(warned.Warnings[0], "kvm9 has not joined") {
		t.Errorf("an unknown proxy: %+v", warned)
	}
	for _, tc := range []struct{ body, msg string }{
		{src("lv3", `{"address":"qemu:///session"}`), "system daemon"},
		{src("lv3", `{"address":"qemu+ssh://root:s3cret@kvm1/system"}`), "password does not go in the URI"},
		{src("lv3", `{"address":"qemu:///system","socket":"/x"}`), "unknown field"},
		{src("lv3", `{"address":"qemu:///system","proxy":"a b"}`), "not a proxy name"},
		{`{"name":"lv3","kind":"libvirt","password":"s3cret","definition":{"address":"qemu:///system"}}`, "takes no password"},
	} {
		rec := e.do(op, "POST", "/api/v1/sources", tc.body)
		checkError(t, rec, 400, "invalid_request")
		if !strings.Contains(rec.Body.String(), tc.msg) {
			t.Errorf("%s: %s, want %q", tc.body, rec.Body, tc.msg)
		}
	}
	if strings.Contains(e.bodies.String(), "s3cret") || strings.Contains(e.logs.String(), "s3cret") {
		t.Error("a password from a URI appears in a response or the log")
	}
}
