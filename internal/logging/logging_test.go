package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLevelAndFormatFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want slog.Level
		ok   bool
	}{
		{"debug", slog.LevelDebug, true}, {"INFO", slog.LevelInfo, true}, {"warn", slog.LevelWarn, true},
		{"warning", slog.LevelWarn, true}, {"error", slog.LevelError, true}, {"loud", 0, false}, {"", 0, false},
	} {
		var l Level
		err := l.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && l.Or(slog.LevelError+4) != tc.want) {
			t.Errorf("Level.Set(%q) = %v, level %v; want ok=%v %v", tc.in, err, l.Or(slog.LevelError+4), tc.ok, tc.want)
		}
	}
	var unset Level
	if unset.Or(slog.LevelInfo) != slog.LevelInfo || unset.String() != "" {
		t.Error("an unset level is not the default")
	}
	var f Format
	if f.String() != "text" || f.Set("JSON") != nil || f != JSON || f.Set("xml") == nil {
		t.Errorf("Format: %q", f)
	}
}

func TestLinesCarryTimeAndLevel(t *testing.T) {
	for _, f := range []Format{Text, JSON} {
		var buf bytes.Buffer
		log := New(&buf, slog.LevelInfo, f)
		log.Debug("hidden")
		log.Info("session ended", "session", 7, "status", "failed", "error", "proxy lost")
		log.Warn("heartbeat", "err", "connection refused")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("%s: %d lines, want 2 (debug hidden at info):\n%s", f, len(lines), buf.String())
		}
		for i, want := range []string{"INFO", "WARN"} {
			if f == JSON {
				var m map[string]any
				if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
					t.Fatalf("json line %q: %v", lines[i], err)
				}
				if m["level"] != want || m["time"] == nil || m["msg"] == nil {
					t.Errorf("json line %q: want level %s, time and msg", lines[i], want)
				}
				continue
			}
			if !strings.HasPrefix(lines[i], "time=") || !strings.Contains(lines[i], " level="+want+" ") {
				t.Errorf("text line %q: want time= and level=%s", lines[i], want)
			}
		}
	}
}
