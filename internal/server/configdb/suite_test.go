package configdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// backend makes fresh, empty databases of one kind for the suite.
type backend struct {
	name string
	// freshDSN returns the DSN of a new empty database, removed when t ends.
	freshDSN func(t *testing.T) string
}

// testClock is a settable clock for the store.
type testClock struct{ *clock.Fake }

func newClock() *testClock {
	return &testClock{clock.NewFake(time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC))}
}
func (c *testClock) now() time.Time          { return c.Now() }
func (c *testClock) advance(d time.Duration) { c.Advance(d) }

var testMasterKey = bytes.Repeat([]byte{0x42}, MasterKeySize)

// runSuite is the one test suite every backend passes.
func runSuite(t *testing.T, b backend) {
	ctx := context.Background()
	open := func(t *testing.T, opts ...Option) (*Store, *testClock) {
		t.Helper()
		clk := newClock()
		opts = append([]Option{WithClock(clk), WithMasterKey(testMasterKey)}, opts...)
		s, err := Open(ctx, b.freshDSN(t), opts...)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s, clk
	}
	t.Run("Migrations", func(t *testing.T) { testMigrations(t, b) })
	t.Run("APITokens", func(t *testing.T) { s, clk := open(t); testAPITokens(t, s, clk) })
	t.Run("JoinTokens", func(t *testing.T) { s, clk := open(t); testJoinTokens(t, s, clk) })
	t.Run("JoinTokenConcurrent", func(t *testing.T) { s, _ := open(t); testJoinTokenConcurrent(t, s) })
	t.Run("Agents", func(t *testing.T) { s, clk := open(t); testAgents(t, s, clk) })
	t.Run("Jobs", func(t *testing.T) { s, _ := open(t); testJobs(t, s) })
	t.Run("Sources", func(t *testing.T) { s, _ := open(t); testSources(t, s) })
	t.Run("SessionsTasks", func(t *testing.T) { s, clk := open(t); testSessions(t, s, clk) })
	t.Run("Secrets", func(t *testing.T) { testSecrets(t, b) })
	t.Run("Audit", func(t *testing.T) { s, clk := open(t); testAudit(t, s, clk) })
	t.Run("NoPlaintextTokens", func(t *testing.T) { s, _ := open(t); testNoPlaintextInTables(t, s) })
	t.Run("MigrateFromV1", func(t *testing.T) { testMigrateFromV1(t, b) })
	t.Run("Points", func(t *testing.T) { s, clk := open(t); testPoints(t, s, clk) })
	t.Run("PointScans", func(t *testing.T) { s, clk := open(t); testPointScans(t, s, clk) })
	t.Run("TaskFields", func(t *testing.T) { s, clk := open(t); testTaskFields(t, s, clk) })
	t.Run("TaskRequeue", func(t *testing.T) { s, clk := open(t); testRequeue(t, s, clk) })
	t.Run("FailUnfinished", func(t *testing.T) { s, clk := open(t); testFailUnfinished(t, s, clk) })
	t.Run("Users", func(t *testing.T) { s, clk := open(t); testUsers(t, s, clk) })
	t.Run("LoginSessions", func(t *testing.T) { s, clk := open(t); testLoginSessions(t, s, clk) })
	t.Run("Paging", func(t *testing.T) { s, clk := open(t); testPaging(t, s, clk) })
	t.Run("NewestPoints", func(t *testing.T) { testNewestPoints(t, b) })
	t.Run("Dashboard", func(t *testing.T) { s, clk := open(t); testDashboard(t, s, clk) })
	t.Run("Notifications", func(t *testing.T) { s, clk := open(t); testNotifications(t, s, clk) })
	t.Run("MigrateNotified", func(t *testing.T) { testMigrateNotified(t, b) })
	t.Run("Monitor", func(t *testing.T) {
		rec := &recorder{}
		s, clk := open(t, WithObserver(rec))
		testMonitor(t, s, clk, rec)
	})
}

func testMigrations(t *testing.T, b backend) {
	ctx := context.Background()
	dsn := b.freshDSN(t)
	// Several servers opening a fresh database at once all succeed.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(ctx, dsn)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
	}
	for range 2 { // open again: nothing left to apply
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != LatestSchemaVersion() || v < 1 {
			t.Fatalf("schema version %d (%v), want %d", v, err, LatestSchemaVersion())
		}
		var n int
		if err := s.queryRow(ctx, s.db, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != v {
			t.Fatalf("schema_migrations rows %d (%v), want %d", n, err, v)
		}
		s.Close()
	}
	// A database from a newer Holdfast is refused.
	s, _ := Open(ctx, dsn)
	if _, err := s.exec(ctx, s.db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		9999, "future", time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dsn); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func testAPITokens(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	tok, err := s.CreateAPIToken(ctx, "alice", RoleBackupOperator)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, apiTokenPrefix) || len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	_, err = s.CreateAPIToken(ctx, "alice", RoleViewer)
	checkConflict(t, "duplicate token name", err, "an API token named alice already exists")
	if _, err := s.CreateAPIToken(ctx, "bob", "root"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad role: %v, want ErrInvalid", err)
	}
	p, err := s.Authenticate(ctx, tok)
	if err != nil || p.Name != "alice" || p.Role != RoleBackupOperator {
		t.Fatalf("Authenticate: %+v %v", p, err)
	}
	for _, bad := range []string{"", tok + "x", tok[:len(tok)-1], "hfa_" + strings.Repeat("A", 43), "hfj_x"} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Authenticate(%q): %v, want ErrUnauthorized", bad, err)
		}
	}
	clk.advance(2 * time.Minute)
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAPITokens(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListAPITokens: %v %v", list, err)
	}
	if !list[0].LastUsed.Equal(clk.now().Truncate(time.Microsecond)) {
		t.Fatalf("LastUsed %v, want %v", list[0].LastUsed, clk.now())
	}
	if err := s.DeleteAPIToken(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := s.DeleteAPIToken(ctx, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
}

func testJoinTokens(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	if _, err := s.CreateJoinToken(ctx, "server", time.Hour); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad role: %v", err)
	}
	tok, err := s.CreateJoinToken(ctx, AgentRepository, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	role, err := s.ConsumeJoinToken(ctx, tok, "repo1")
	if err != nil || role != AgentRepository {
		t.Fatalf("consume: %q %v", role, err)
	}
	if _, err := s.ConsumeJoinToken(ctx, tok, "repo2"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("second consume: %v", err)
	}
	expiring, _ := s.CreateJoinToken(ctx, AgentProxy, time.Minute)
	clk.advance(time.Minute)
	if _, err := s.ConsumeJoinToken(ctx, expiring, "p1"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("expired token: %v", err)
	}
	list, err := s.ListJoinTokens(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListJoinTokens: %v %v", list, err)
	}
	if list[1].UsedBy != "repo1" || list[1].Used.IsZero() || !list[0].Used.IsZero() {
		t.Fatalf("join tokens %+v", list)
	}
	n, err := s.PurgeJoinTokens(ctx, clk.now().Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
}

func testJoinTokenConcurrent(t *testing.T, s *Store) {
	ctx := context.Background()
	tok, err := s.CreateJoinToken(ctx, AgentProxy, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	var ok, refused atomic.Int32
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := s.ConsumeJoinToken(ctx, tok, fmt.Sprintf("proxy%d", i))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrUnauthorized):
				refused.Add(1)
			default:
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if ok.Load() != 1 || refused.Load() != n-1 {
		t.Fatalf("%d consumed, %d refused; want 1 and %d", ok.Load(), refused.Load(), n-1)
	}
}

func testAgents(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	a, err := s.UpsertAgent(ctx, Agent{Role: AgentProxy, Name: "p1", Address: "10.0.0.1:6161", Slots: 4,
		Capabilities: json.RawMessage(`{"transports":["nbd","direct"]}`), CertFingerprint: "sha256:aa"})
	if err != nil {
		t.Fatal(err)
	}
	registered := a.Registered
	clk.advance(time.Hour)
	a, err = s.UpsertAgent(ctx, Agent{Role: AgentProxy, Name: "p1", Address: "10.0.0.2:6161", Slots: 8,
		CertFingerprint: "sha256:bb"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Address != "10.0.0.2:6161" || a.Slots != 8 || string(a.Capabilities) != "{}" ||
		a.CertFingerprint != "sha256:bb" || !a.Registered.Equal(registered) || !a.LastHeartbeat.IsZero() {
		t.Fatalf("after re-register: %+v", a)
	}
	if _, err := s.UpsertAgent(ctx, Agent{Role: AgentRepository, Name: "p1", Slots: 2}); err != nil {
		t.Fatal(err) // same name, other role: another agent
	}
	if _, err := s.UpsertAgent(ctx, Agent{Role: "server", Name: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad role: %v", err)
	}
	if _, err := s.UpsertAgent(ctx, Agent{Role: AgentProxy, Name: "x", Capabilities: json.RawMessage("{")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad JSON: %v", err)
	}
	clk.advance(time.Minute)
	if err := s.Heartbeat(ctx, AgentProxy, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, AgentProxy, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("heartbeat of unknown agent: %v", err)
	}
	proxies, err := s.ListAgents(ctx, AgentProxy)
	if err != nil || len(proxies) != 1 || !proxies[0].LastHeartbeat.Equal(clk.now().Truncate(time.Microsecond)) {
		t.Fatalf("ListAgents(proxy): %+v %v", proxies, err)
	}
	if all, _ := s.ListAgents(ctx, ""); len(all) != 2 {
		t.Fatalf("ListAgents(): %d", len(all))
	}
	if err := s.DeleteAgent(ctx, AgentRepository, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAgent(ctx, AgentRepository, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted agent: %v", err)
	}
}

func testJobs(t *testing.T, s *Store) {
	ctx := context.Background()
	def := json.RawMessage(`{"vms":["web1","db1"],"repository":"r1","chunk_size":1048576}`)
	j, err := s.CreateJob(ctx, Job{Name: "nightly", Definition: def, Schedule: "0 2 * * *", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if j.ID == 0 || j.Kind != "backup" || !j.Enabled || string(j.Definition) != string(def) {
		t.Fatalf("created %+v", j)
	}
	_, err = s.CreateJob(ctx, Job{Name: "nightly", Definition: def})
	checkConflict(t, "duplicate job name", err, "a job named nightly already exists")
	if _, err := s.CreateJob(ctx, Job{Name: "nodef"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("job without definition: %v", err)
	}
	other, err := s.CreateJob(ctx, Job{Name: "weekly", Definition: def})
	if err != nil {
		t.Fatal(err)
	}
	other.Name = "nightly"
	_, err = s.UpdateJob(ctx, other)
	checkConflict(t, "rename onto an existing name", err, "a job named nightly already exists")
	j.Enabled, j.Schedule = false, ""
	if j, err = s.UpdateJob(ctx, j); err != nil || j.Enabled || j.Schedule != "" {
		t.Fatalf("UpdateJob: %+v %v", j, err)
	}
	if _, err := s.UpdateJob(ctx, Job{ID: 9999, Name: "x", Definition: def}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing job: %v", err)
	}
	if got, err := s.GetJob(ctx, "nightly"); err != nil || got.ID != j.ID || got.Enabled {
		t.Fatalf("GetJob: %+v %v", got, err)
	}
	if jobs, err := s.ListJobs(ctx); err != nil || len(jobs) != 2 || jobs[0].Name != "nightly" {
		t.Fatalf("ListJobs: %+v %v", jobs, err)
	}
	if err := s.DeleteJob(ctx, "weekly"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetJob(ctx, "weekly"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetJob after delete: %v", err)
	}
}

func testSources(t *testing.T, s *Store) {
	ctx := context.Background()
	src, err := s.CreateSource(ctx, Source{Name: "kvm1", Kind: "qemu",
		Definition: json.RawMessage(`{"qmp":"/run/vm1.sock","credentials":"secret:kvm1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateSource(ctx, Source{Name: "kvm1", Kind: "qemu"})
	checkConflict(t, "duplicate source", err, "a source named kvm1 already exists")
	src.Kind = "nbd"
	if src, err = s.UpdateSource(ctx, src); err != nil || src.Kind != "nbd" {
		t.Fatalf("UpdateSource: %+v %v", src, err)
	}
	if list, err := s.ListSources(ctx); err != nil || len(list) != 1 {
		t.Fatalf("ListSources: %v %v", list, err)
	}
	if err := s.DeleteSource(ctx, "kvm1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSource(ctx, "kvm1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSource after delete: %v", err)
	}
}

// checkConflict checks that err is ErrConflict with the message users see,
// and that no SQL or driver text reaches it.
func checkConflict(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("%s: %v, want ErrConflict", what, err)
	}
	if err.Error() != want {
		t.Errorf("%s: message %q, want %q", what, err.Error(), want)
	}
	for _, raw := range []string{"constraint", "UNIQUE", "unique", "SQL", "2067", "23505", "configdb"} {
		if strings.Contains(err.Error(), raw) {
			t.Errorf("%s: message %q shows %q", what, err.Error(), raw)
		}
	}
}
