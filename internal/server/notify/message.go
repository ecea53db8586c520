package notify

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/orchestrator"
)

// SchemaVersion is the version of the webhook body (docs/notifications.md).
const SchemaVersion = 1

// Message events.
const (
	EventSession = "session" // a job's session ended
	EventSummary = "summary" // the daily summary
	EventTest    = "test"    // the test button
)

// Message is what a notification says: the webhook body as JSON, and the
// e-mail's subject and text. Text fields from outside (VM names, error
// text) are kept as they are here and escaped by each renderer.
type Message struct {
	Version  int        `json:"version"`
	Event    string     `json:"event"`
	Subject  string     `json:"subject"`
	Time     time.Time  `json:"time"`
	Job      string     `json:"job,omitempty"`
	Kind     string     `json:"kind,omitempty"`
	Result   string     `json:"result,omitempty"` // failure, warning, success
	Session  int64      `json:"session,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Ended    *time.Time `json:"ended,omitempty"`
	Duration float64    `json:"duration_seconds,omitempty"`
	Error    string     `json:"error,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
	VMs      []VM       `json:"vms,omitempty"`
	Summary  *Summary   `json:"summary,omitempty"`
}

// VM is one VM of a session.
type VM struct {
	Name        string   `json:"name"`
	Result      string   `json:"result"`
	Point       string   `json:"point,omitempty"`
	BytesRead   int64    `json:"bytes_read"`
	BytesStored int64    `json:"bytes_stored"`
	Duration    float64  `json:"duration_seconds"`
	Errors      []string `json:"errors,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

// Summary is the daily summary of the 24 h before To.
type Summary struct {
	From     time.Time      `json:"from"`
	To       time.Time      `json:"to"`
	Sessions map[string]int `json:"sessions"` // by result: success, warning, failure, cancelled
	// FailedVMs failed in a session of the period; NoPointVMs have no
	// restore point newer than From.
	FailedVMs  []string `json:"failed_vms"`
	NoPointVMs []string `json:"vms_without_point"`
}

// resultName is the result word of a session state.
func resultName(st configdb.State) string {
	if st == configdb.StateFailed {
		return "failure"
	}
	return string(st)
}

// SessionMessage builds the message of an ended session from its result
// document (a session ended by a server restart has only an error).
func SessionMessage(se configdb.Session) Message {
	var res orchestrator.Result
	_ = json.Unmarshal(se.Result, &res)
	m := Message{Version: SchemaVersion, Event: EventSession, Time: se.Ended, Job: se.JobName, Kind: se.Kind,
		Result: resultName(se.State), Session: se.ID, Started: optTime(se.Started), Ended: optTime(se.Ended),
		Duration: se.Ended.Sub(se.Started).Seconds(), Error: res.Error, Warnings: res.Warnings}
	for _, v := range res.VMs {
		vm := VM{Name: v.Name, Result: resultName(v.Status), Point: v.Point, Errors: v.Errors, Warnings: v.Warnings}
		for _, d := range v.Disks {
			vm.BytesRead += d.BytesRead
			vm.BytesStored += d.BytesWritten
			vm.Duration = max(vm.Duration, d.Duration)
		}
		m.VMs = append(m.VMs, vm)
	}
	failed := 0
	for _, vm := range m.VMs {
		if vm.Result == "failure" {
			failed++
		}
	}
	m.Subject = fmt.Sprintf("[Holdfast] %s: job %s, session %d", m.Result, se.JobName, se.ID)
	if failed > 0 {
		m.Subject += fmt.Sprintf(" (%d of %d VMs failed)", failed, len(m.VMs))
	}
	return m
}

// SummaryMessage builds the daily summary of the sessions that ended in
// [to-24h, to); last is each VM's newest point (configdb.LastPoints).
func SummaryMessage(to time.Time, sessions []configdb.Session, last map[string]time.Time) Message {
	from := to.Add(-24 * time.Hour)
	sum := &Summary{From: from, To: to, Sessions: map[string]int{}, FailedVMs: []string{}, NoPointVMs: []string{}}
	failed, seen := map[string]bool{}, map[string]bool{}
	for _, se := range sessions {
		sum.Sessions[resultName(se.State)]++
		var res orchestrator.Result
		_ = json.Unmarshal(se.Result, &res)
		for _, v := range res.VMs {
			seen[v.Name] = true
			if v.Status == configdb.StateFailed {
				failed[v.Name] = true
			}
		}
	}
	for vm := range failed {
		sum.FailedVMs = append(sum.FailedVMs, vm)
	}
	for vm, t := range last {
		seen[vm] = true
		_ = t
	}
	for vm := range seen {
		if t, ok := last[vm]; !ok || t.Before(from) {
			sum.NoPointVMs = append(sum.NoPointVMs, vm)
		}
	}
	sort.Strings(sum.FailedVMs)
	sort.Strings(sum.NoPointVMs)
	total := 0
	for _, n := range sum.Sessions {
		total += n
	}
	return Message{Version: SchemaVersion, Event: EventSummary, Time: to, Summary: sum,
		Subject: fmt.Sprintf("[Holdfast] daily summary: %d sessions, %d failed, %d VMs without a point in 24 h",
			total, sum.Sessions["failure"], len(sum.NoPointVMs))}
}

// TestMessage is the message of the test button.
func TestMessage(target string, now time.Time) Message {
	return Message{Version: SchemaVersion, Event: EventTest, Time: now,
		Subject: "[Holdfast] test message to notification target " + target}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Text renders the message as plain text for e-mail. Outside text is
// made printable: control characters (a terminal escape in a VM name, a
// line break in an error) are shown as \x1b, \n …; the renderer of the
// transfer encoding handles the rest.
func (m Message) Text() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	switch m.Event {
	case EventTest:
		line("This is a test message from the Holdfast backup server.")
		line("Time: %s", m.Time.UTC().Format(time.RFC3339))
		return b.String()
	case EventSummary:
		m.summaryText(line)
		return b.String()
	}
	line("Job:      %s (%s)", printable(m.Job), m.Kind)
	line("Result:   %s", m.Result)
	line("Session:  %d (holdfast session show %d)", m.Session, m.Session)
	if m.Started != nil && m.Ended != nil {
		line("Time:     %s to %s (%s)", m.Started.UTC().Format(time.RFC3339), m.Ended.UTC().Format(time.RFC3339),
			time.Duration(m.Duration*float64(time.Second)).Round(time.Second))
	}
	if m.Error != "" {
		line("Error:    %s", printable(m.Error))
	}
	for _, w := range m.Warnings {
		line("Warning:  %s", printable(w))
	}
	if len(m.VMs) > 0 {
		line("")
		line("VMs (%d):", len(m.VMs))
	}
	for _, vm := range m.VMs {
		line("- %s: %s, %s read, %s stored, %s%s", printable(vm.Name), vm.Result, bytesText(vm.BytesRead),
			bytesText(vm.BytesStored), time.Duration(vm.Duration*float64(time.Second)).Round(time.Second), pointText(vm.Point))
		for _, e := range vm.Errors {
			line("    error: %s", printable(e))
		}
		for _, w := range vm.Warnings {
			line("    warning: %s", printable(w))
		}
	}
	return b.String()
}

func (m Message) summaryText(line func(string, ...any)) {
	s := m.Summary
	if s == nil {
		return
	}
	line("Holdfast daily summary, %s to %s", s.From.UTC().Format(time.RFC3339), s.To.UTC().Format(time.RFC3339))
	line("")
	keys := make([]string, 0, len(s.Sessions))
	for k := range s.Sessions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	line("Sessions:")
	if len(keys) == 0 {
		line("  none")
	}
	for _, k := range keys {
		line("  %-9s %d", k+":", s.Sessions[k])
	}
	line("VMs that failed (%d):", len(s.FailedVMs))
	for _, vm := range s.FailedVMs {
		line("  %s", printable(vm))
	}
	line("VMs without a restore point in the last 24 h (%d):", len(s.NoPointVMs))
	for _, vm := range s.NoPointVMs {
		line("  %s", printable(vm))
	}
}

func pointText(p string) string {
	if p == "" {
		return ""
	}
	return ", point " + p
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// printable escapes control characters and invalid UTF-8 of text from
// outside, so it cannot break lines, headers or terminals.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == unicode.ReplacementChar && len(s) > i && s[i] >= 0x80 && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
