package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

var testKey = bytes.Repeat([]byte{7}, configdb.MasterKeySize)

const fixturePassword = "fixture-Pa55word-do-not-echo"

// env is a Server on a fresh SQLite configdb with one token per role and
// fixtures: job j1 (with an inline password), source s1, API token
// "victim", viewer user u1, session 1 of j1 (success) and session 2 of j1
// (failed for vm1).
type env struct {
	t      *testing.T
	store  *configdb.Store
	srv    *Server
	tokens map[configdb.Role]string
	logs   *bytes.Buffer
	bodies *bytes.Buffer // every response body, for leak checks
	runner *fakeRunner
	broker *fakeBroker
	ca     *pki.CA
	clk    *clock.Fake
	tester *fakeTester
}

// fakeTester answers notification tests with err.
type fakeTester struct {
	mu    sync.Mutex
	err   error
	tried []string
}

func (f *fakeTester) Test(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tried = append(f.tried, name)
	return f.err
}

// fakeRunner records the sessions it is asked to start and, unless keep
// is set or err fails them, ends them at once (a job runs one session at
// a time: the API refuses a run while one is queued or running).
type fakeRunner struct {
	mu      sync.Mutex
	store   *configdb.Store
	started []configdb.Session
	jobs    []configdb.Job // as given to Start, by session
	err     error
	keep    bool
}

func (f *fakeRunner) Start(ctx context.Context, se configdb.Session, j configdb.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, se)
	f.jobs = append(f.jobs, j)
	if f.err == nil && !f.keep && f.store != nil {
		if _, err := f.store.UpdateSession(ctx, se.ID, configdb.StateSuccess, nil); err != nil {
			return err
		}
	}
	return f.err
}

// fakeBroker queues restores as sessions and hands out no tasks; it keeps
// the mount requests it got.
type fakeBroker struct {
	store  *configdb.Store
	mu     sync.Mutex
	mounts []taskproto.MountRequest
}

func (f *fakeBroker) NextTask(context.Context, string, time.Duration) (*taskproto.Spec, error) {
	return nil, nil
}
func (f *fakeBroker) TaskProgress(context.Context, string, taskproto.Progress) error {
	return taskproto.ErrStale
}
func (f *fakeBroker) TaskResult(context.Context, string, taskproto.Result) error {
	return taskproto.ErrStale
}
func (f *fakeBroker) CancelSession(ctx context.Context, id int64) (configdb.Session, error) {
	return f.store.UpdateSession(ctx, id, configdb.StateCancelled, nil)
}
func (f *fakeBroker) StartMount(ctx context.Context, req taskproto.MountRequest) (configdb.Session, error) {
	f.mu.Lock()
	f.mounts = append(f.mounts, req)
	f.mu.Unlock()
	if _, err := f.store.GetPoint(ctx, req.Point); err != nil {
		return configdb.Session{}, err
	}
	return f.store.CreateSession(ctx, "", "instant-recovery")
}
func (f *fakeBroker) StartRestore(ctx context.Context, req taskproto.RestoreRequest) (configdb.Session, error) {
	if _, err := f.store.GetPoint(ctx, req.Point); err != nil {
		return configdb.Session{}, err
	}
	return f.store.CreateSession(ctx, "", "restore")
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC))
	store, err := configdb.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "holdfast.db"), configdb.WithMasterKey(testKey),
		configdb.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, store: store, tokens: map[configdb.Role]string{}, logs: &bytes.Buffer{},
		bodies: &bytes.Buffer{}, runner: &fakeRunner{store: store}}
	ca, err := pki.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.ca = ca
	e.broker = &fakeBroker{store: store}
	e.tester = &fakeTester{}
	// Tests send every request from one address and fail on purpose a lot;
	// TestAuthFailureLimit tests the limit.
	e.clk = clk
	e.srv = New(store, Config{Clock: clk, Runner: e.runner, CA: ca, Tasks: e.broker, VMs: fakeVMs{},
		AuthFailures: AuthFailureLimit{Burst: 1 << 20}, Logins: LoginPolicy{Hash: testHashParams}, Notifier: e.tester,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for _, r := range allRoles {
		tok, err := store.CreateAPIToken(ctx, "tok-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
	}
	if _, err := store.CreateAPIToken(ctx, "victim", configdb.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateUser(ctx, "u1", configdb.RoleViewer, testHash(t, "u1-password-long")); err != nil {
		t.Fatal(err)
	}
	admin := e.tokens[configdb.RoleAdministrator]
	e.mustDo(admin, "POST", "/api/v1/jobs", `{"name":"j1","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"},"password":"`+fixturePassword+`"}`, 201)
	e.mustDo(admin, "POST", "/api/v1/sources", `{"name":"s1","kind":"file","definition":{"path":"/images"}}`, 201)
	if _, err := store.CreateNotificationTarget(ctx, configdb.NotificationTarget{Name: "n1", Kind: "webhook",
		Config: json.RawMessage(`{"url":"https://hooks.example.com/n1"}`)}); err != nil {
		t.Fatal(err)
	}
	if se, err := store.CreateSession(ctx, "j1", "backup"); err != nil {
		t.Fatal(err)
	} else if _, err := store.UpdateSession(ctx, se.ID, configdb.StateSuccess, nil); err != nil {
		t.Fatal(err)
	} else if _, err := store.MarkSessionNotified(ctx, se.ID, []configdb.Notification{{Target: "n1", SessionID: se.ID,
		Event: "success", Message: json.RawMessage(`{"version":1}`)}}); err != nil {
		t.Fatal(err)
	}
	// Session 2 of j1 failed for vm1 (POST /sessions/2/retry runs it again).
	if se, err := store.CreateSession(ctx, "j1", "backup"); err != nil {
		t.Fatal(err)
	} else if _, err := store.UpdateSession(ctx, se.ID, configdb.StateFailed,
		json.RawMessage(`{"status":"failed","vms":[{"name":"vm1","status":"failed","errors":["disk 0: no such file"]}]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RecordPoint(ctx, configdb.Point{ID: "p1", Repository: "repo1", VM: "vm1", JobName: "j1",
		Disks: json.RawMessage(`[]`)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// do sends a request with token ("" for none) and returns the recorder.
func (e *env) do(token, method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	e.bodies.Write(rec.Body.Bytes())
	return rec
}

func (e *env) mustDo(token, method, path, body string, want int) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := e.do(token, method, path, body)
	if rec.Code != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, rec.Code, want, rec.Body)
	}
	return rec
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, rec.Body)
	}
	return v
}

// checkError asserts rec is an error response with status and code.
// checkMessage is checkError that also wants the exact message users see.
func checkMessage(t *testing.T, rec *httptest.ResponseRecorder, status int, code, msg string) {
	t.Helper()
	body := rec.Body.String()
	checkError(t, rec, status, code)
	var eb apitypes.ErrorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error != msg {
		t.Fatalf("error message %q (%v), want %q", eb.Error, err, msg)
	}
}

func checkError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	body := decodeBody[apitypes.ErrorBody](t, rec)
	if body.Code != code || body.Error == "" {
		t.Fatalf("error body %+v, want code %q and a message", body, code)
	}
}
