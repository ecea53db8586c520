package configdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testSessions(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	if _, err := s.CreateSession(ctx, "missing", "backup"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session for a missing job: %v", err)
	}
	if _, err := s.CreateJob(ctx, Job{Name: "nightly", Definition: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	se, err := s.CreateSession(ctx, "nightly", "backup")
	if err != nil || se.State != StateRunning || se.JobID == 0 || !se.Ended.IsZero() {
		t.Fatalf("CreateSession: %+v %v", se, err)
	}
	task, err := s.CreateTask(ctx, Task{SessionID: se.ID, VM: "web1", Disk: "vda", BytesTotal: 1 << 30})
	if err != nil || task.State != StateQueued || !task.Started.IsZero() {
		t.Fatalf("CreateTask: %+v %v", task, err)
	}
	if _, err := s.CreateTask(ctx, Task{SessionID: 9999, VM: "x", Disk: "y"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("task of a missing session: %v, want ErrConflict", err)
	}
	clk.advance(time.Second)
	task.State, task.Proxy, task.Repository, task.Transport, task.BytesRead = StateRunning, "p1", "r1", "nbd", 4096
	if task, err = s.UpdateTask(ctx, task); err != nil || task.Started.IsZero() || task.Proxy != "p1" {
		t.Fatalf("UpdateTask running: %+v %v", task, err)
	}
	started := task.Started
	clk.advance(time.Minute)
	task.State, task.BytesRead, task.BytesTransferred, task.BytesWritten = StateSuccess, 1<<30, 1<<20, 1<<19
	if task, err = s.UpdateTask(ctx, task); err != nil || !task.Started.Equal(started) || task.Ended.IsZero() {
		t.Fatalf("UpdateTask done: %+v %v", task, err)
	}
	result := json.RawMessage(`{"vms":1,"bytes_read":1073741824}`)
	se, err = s.UpdateSession(ctx, se.ID, StateWarning, result)
	if err != nil || se.State != StateWarning || se.Ended.IsZero() || string(se.Result) != string(result) {
		t.Fatalf("UpdateSession: %+v %v", se, err)
	}
	if _, err := s.UpdateSession(ctx, 9999, StateFailed, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing session: %v", err)
	}
	adhoc, err := s.CreateSession(ctx, "", "restore")
	if err != nil || adhoc.JobID != 0 {
		t.Fatalf("ad-hoc session: %+v %v", adhoc, err)
	}
	if list, err := s.ListSessions(ctx, SessionFilter{JobName: "nightly"}); err != nil || len(list) != 1 {
		t.Fatalf("ListSessions(nightly): %+v %v", list, err)
	}
	if list, _ := s.ListSessions(ctx, SessionFilter{}); len(list) != 2 || list[0].ID != adhoc.ID {
		t.Fatalf("ListSessions newest first: %+v", list)
	}
	if tasks, err := s.ListTasks(ctx, se.ID); err != nil || len(tasks) != 1 || tasks[0].BytesWritten != 1<<19 {
		t.Fatalf("ListTasks: %+v %v", tasks, err)
	}
	// Deleting the job keeps its history, unlinked.
	if err := s.DeleteJob(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetSession(ctx, se.ID); err != nil || got.JobID != 0 || got.JobName != "nightly" {
		t.Fatalf("session after job delete: %+v %v", got, err)
	}
	n, err := s.DeleteSessionsBefore(ctx, clk.now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteSessionsBefore: %d %v", n, err)
	}
	if tasks, _ := s.ListTasks(ctx, se.ID); len(tasks) != 0 {
		t.Fatal("tasks of a deleted session remain")
	}
}

func testSecrets(t *testing.T, b backend) {
	ctx := context.Background()
	dsn := b.freshDSN(t)
	s, err := Open(ctx, dsn, WithMasterKey(testMasterKey))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plain := []byte("vcenter-password-Sup3r$ecret")
	if err := s.PutSecret(ctx, "vcenter", plain); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSecret(ctx, "vcenter")
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("GetSecret: %q %v", got, err)
	}
	var sealed []byte
	if err := s.queryRow(ctx, s.db, "SELECT ciphertext FROM secrets WHERE name = ?", "vcenter").Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) || len(sealed) != 12+len(plain)+16 {
		t.Fatalf("ciphertext %x holds the plaintext or has the wrong size", sealed)
	}
	if err := s.PutSecret(ctx, "vcenter", []byte("rotated")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSecret(ctx, "vcenter"); string(got) != "rotated" {
		t.Fatalf("after rotation: %q", got)
	}
	if _, err := s.GetSecret(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	// A ciphertext moved to another name does not open (name is bound).
	if err := s.PutSecret(ctx, "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.exec(ctx, s.db, "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE name = ?) WHERE name = ?",
		"vcenter", "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSecret(ctx, "other"); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("moved ciphertext: %v", err)
	}
	if names, err := s.ListSecrets(ctx); err != nil || len(names) != 2 {
		t.Fatalf("ListSecrets: %v %v", names, err)
	}

	noKey, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer noKey.Close()
	if _, err := noKey.GetSecret(ctx, "vcenter"); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("without master key: %v", err)
	}
	wrongKey, err := Open(ctx, dsn, WithMasterKey(bytes.Repeat([]byte{7}, MasterKeySize)))
	if err != nil {
		t.Fatal(err)
	}
	defer wrongKey.Close()
	if _, err := wrongKey.GetSecret(ctx, "vcenter"); err == nil || !strings.Contains(err.Error(), "sealed under master key") {
		t.Fatalf("wrong master key: %v", err)
	}
	if _, err := Open(ctx, dsn, WithMasterKey([]byte("short"))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short master key: %v", err)
	}
}

func testAudit(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	if err := s.Audit(ctx, "alice", "job.create", "nightly", map[string]any{"schedule": "0 2 * * *"}); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Minute)
	since := clk.now()
	if err := s.Audit(ctx, "proxy:p1", "agent.join", "p1", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, "", "x", "", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("audit without actor: %v", err)
	}
	all, err := s.ListAudit(ctx, AuditFilter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("ListAudit: %+v %v", all, err)
	}
	e := all[1]
	if e.Actor != "alice" || e.Action != "job.create" || e.Target != "nightly" ||
		string(e.Details) != `{"schedule":"0 2 * * *"}` || !e.At.Equal(since.Add(-time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("audit entry %+v", e)
	}
	if all[0].Details != nil {
		t.Fatalf("nil details stored as %q", all[0].Details)
	}
	if got, _ := s.ListAudit(ctx, AuditFilter{Since: since}); len(got) != 1 || got[0].Actor != "proxy:p1" {
		t.Fatalf("ListAudit(since): %+v", got)
	}
	if got, _ := s.ListAudit(ctx, AuditFilter{Actor: "alice", Action: "job.create", Limit: 5}); len(got) != 1 {
		t.Fatalf("ListAudit(actor): %+v", got)
	}
}

// testNoPlaintextInTables reads every column of every row of the token
// tables back and checks no token appears in any form.
func testNoPlaintextInTables(t *testing.T, s *Store) {
	ctx := context.Background()
	api, _ := s.CreateAPIToken(ctx, "ci", RoleAdministrator)
	join, _ := s.CreateJoinToken(ctx, AgentProxy, time.Hour)
	for _, table := range []string{"api_tokens", "join_tokens"} {
		dump := dumpTable(t, s, table)
		for _, tok := range []string{api, join, strings.TrimPrefix(api, apiTokenPrefix), strings.TrimPrefix(join, joinTokenPrefix)} {
			if strings.Contains(dump, tok) {
				t.Fatalf("%s holds a token in clear: %s", table, dump)
			}
		}
	}
}

func dumpTable(t *testing.T, s *Store, table string) string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "%v|%s|", v, v)
		}
	}
	return b.String()
}
