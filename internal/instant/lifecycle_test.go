package instant

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// startChild starts cmd with its stdout piped, reaps it when it ends and
// waits until it prints "ready" (so it has set itself up).
func startChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q %v", line, err)
	}
}

// serving records a serving session whose process is pid, with a redo
// directory made by the registry.
func serving(t *testing.T, reg Registry, pid int) Record {
	t.Helper()
	id := NewID()
	redo, _, err := reg.SessionDir(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{ID: id, PID: pid, RedoDir: redo, Disks: []DiskInfo{{Index: 0, Size: 1 << 20}}}
	if err := reg.Save(rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestStart(t *testing.T) {
	ctx := context.Background()
	// script is the serving process's shell script for session ID in the
	// registry directory REG.
	for _, c := range []struct {
		name    string
		script  string
		clock   clock.Clock
		wantErr string
	}{
		{name: "serves", clock: clock.Real(),
			script: `mkdir -p "$REG" && printf '{"id":"%s","pid":%d}' "$ID" $$ > "$REG/$ID.json.tmp" && mv "$REG/$ID.json.tmp" "$REG/$ID.json" && exec sleep 600`},
		{name: "exits", clock: clock.Real(), script: `echo "cannot open the repository" >&2; exit 3`,
			wantErr: "did not start (exit status 3): cannot open the repository"},
		{name: "never answers", clock: clock.NewFake(t0), script: `exec sleep 600`,
			wantErr: "did not answer within 60 s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions"), Clock: c.clock}
			parent := t.TempDir()
			var child *exec.Cmd
			rec, err := reg.Start(ctx, StartOptions{RedoDir: parent, Command: func(id, redo string) (*exec.Cmd, error) {
				if filepath.Dir(redo) != parent || filepath.Base(redo) != id {
					t.Errorf("redo directory %s for session %s, want %s/%s", redo, id, parent, id)
				}
				child = exec.Command("sh", "-c", c.script)
				child.Env = append(os.Environ(), "REG="+reg.Dir, "ID="+id)
				return child, nil
			}})
			if child != nil {
				t.Cleanup(func() { _ = child.Process.Kill() })
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Start: %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || rec.State() != "serving" || rec.PID != child.Process.Pid {
				t.Fatalf("Start: %+v %v", rec, err)
			}
			if _, err := os.Stat(filepath.Join(parent, rec.ID, "serve.log")); err != nil {
				t.Errorf("no serve.log: %v", err)
			}
			// Stop ends the serving process.
			got, err := reg.Stop(ctx, rec.ID, StopOptions{Force: true})
			if err != nil || got.ID != rec.ID || Alive(rec.PID) {
				t.Fatalf("Stop: %+v %v (alive %v)", got, err, Alive(rec.PID))
			}
		})
	}
}

func TestStartRefusesServingSession(t *testing.T) {
	reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions")}
	rec := serving(t, reg, os.Getpid())
	_, err := reg.Start(context.Background(), StartOptions{RedoDir: rec.RedoDir, Command: func(string, string) (*exec.Cmd, error) {
		t.Fatal("a second process was started for a serving session")
		return nil, nil
	}})
	if err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("Start: %v", err)
	}
}

func TestStop(t *testing.T) {
	ctx := context.Background()
	t.Run("stopped session is returned as it is", func(t *testing.T) {
		reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions"), Clock: clock.NewFake(t0)}
		rec := serving(t, reg, 0)
		rec.Stopped = t0
		if err := reg.Save(rec); err != nil {
			t.Fatal(err)
		}
		got, err := reg.Stop(ctx, rec.ID, StopOptions{Force: true})
		if err != nil || got.State() != "stopped" {
			t.Fatalf("Stop: %+v %v", got, err)
		}
	})
	t.Run("no such session", func(t *testing.T) {
		reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions")}
		if _, err := reg.Stop(ctx, NewID(), StopOptions{}); !errors.Is(err, ErrNoSession) {
			t.Fatalf("Stop: %v, want ErrNoSession", err)
		}
	})
	t.Run("a process that ignores SIGTERM", func(t *testing.T) {
		child := exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`)
		startChild(t, child)
		reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions"), Clock: clock.NewFake(t0)}
		rec := serving(t, reg, child.Process.Pid)
		_, err := reg.Stop(ctx, rec.ID, StopOptions{Force: true})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d) did not stop within 60 s", rec.PID)) {
			t.Fatalf("Stop: %v", err)
		}
		if !Alive(rec.PID) {
			t.Error("the process is gone")
		}
	})
	t.Run("a cancelled wait", func(t *testing.T) {
		child := exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`)
		startChild(t, child)
		reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions")}
		rec := serving(t, reg, child.Process.Pid)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := reg.Stop(cctx, rec.ID, StopOptions{Force: true}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop: %v, want context.Canceled", err)
		}
	})
}

func TestDiscard(t *testing.T) {
	ctx := context.Background()
	reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions")}
	rec := serving(t, reg, 0)
	for _, f := range []string{"point.json", "serve.log", "mine.txt"} {
		if err := os.WriteFile(filepath.Join(rec.RedoDir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d, err := reg.Discard(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Left) != 1 || d.Left[0] != "mine.txt" {
		t.Errorf("left %v, want [mine.txt]", d.Left)
	}
	if d.HoldErr == nil {
		t.Error("no repository, yet the hold was released")
	}
	if _, err := reg.Load(rec.ID); !errors.Is(err, ErrNoSession) {
		t.Errorf("the session is still recorded: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rec.RedoDir, "point.json")); !os.IsNotExist(err) {
		t.Errorf("redo data left: %v", err)
	}
	// A directory Holdfast did not make for the session is left alone.
	other := serving(t, reg, 0)
	other.RedoDir = t.TempDir()
	if _, err := reg.Discard(ctx, other); !errors.Is(err, ErrNotRedoDir) {
		t.Errorf("Discard of a foreign directory: %v", err)
	}
	if _, err := reg.Load(other.ID); err != nil {
		t.Errorf("a session whose redo data stayed was forgotten: %v", err)
	}
}

func TestMigrateSessionChecks(t *testing.T) {
	ctx := context.Background()
	reg := Registry{Dir: filepath.Join(t.TempDir(), "sessions"), Clock: clock.NewFake(t0)}
	rec := serving(t, reg, 0)
	rec.Stopped = t0
	if err := reg.Save(rec); err != nil {
		t.Fatal(err)
	}
	noStore := errors.New("no repository")
	for _, c := range []struct {
		name    string
		targets map[int]string
		want    error
	}{
		{"a disk the session lacks", map[int]string{1: "/x.img"}, ErrTargets},
		{"a negative disk", map[int]string{-1: "/x.img"}, ErrTargets},
		{"the repository does not open", map[int]string{0: filepath.Join(t.TempDir(), "x.img")}, noStore},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := reg.MigrateSession(ctx, rec.ID, MigrateOptions{Targets: c.targets,
				Store: func(context.Context) (repo.PointReader, func(), error) { return nil, nil, noStore }})
			if !errors.Is(err, c.want) {
				t.Fatalf("MigrateSession: %v, want %v", err, c.want)
			}
			if _, err := reg.Load(rec.ID); err != nil {
				t.Errorf("a failed migration discarded the session: %v", err)
			}
		})
	}
	if _, err := reg.MigrateSession(ctx, NewID(), MigrateOptions{}); !errors.Is(err, ErrNoSession) {
		t.Errorf("unknown session: %v", err)
	}
}

func TestStateDir(t *testing.T) {
	dir := t.TempDir()
	got, err := StateDir(filepath.Join(dir, "a", "..", "b"))
	if err != nil || got != filepath.Join(dir, "b") {
		t.Errorf("StateDir: %s %v", got, err)
	}
	if reg := RegistryIn(got); reg.Dir != filepath.Join(dir, "b", "sessions") {
		t.Errorf("RegistryIn: %s", reg.Dir)
	}
	if got, err := StateDir(""); err != nil || !filepath.IsAbs(got) {
		t.Errorf("default state directory: %s %v", got, err)
	}
}
