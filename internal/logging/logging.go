package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Format is how lines are written: "text" or "json".
type Format string

// Formats.
const (
	Text Format = "text"
	JSON Format = "json"
)

// Set implements pflag.Value.
func (f *Format) Set(s string) error {
	switch Format(strings.ToLower(s)) {
	case Text, JSON:
		*f = Format(strings.ToLower(s))
		return nil
	}
	return fmt.Errorf("log format %q: want text or json", s)
}

// String implements pflag.Value; the zero value is text.
func (f *Format) String() string {
	if *f == "" {
		return string(Text)
	}
	return string(*f)
}

// Type implements pflag.Value.
func (f *Format) Type() string { return "format" }

// Level is a log level that remembers whether it was set.
type Level struct {
	level slog.Level
	set   bool
}

// Set implements pflag.Value: debug, info, warn or error.
func (l *Level) Set(s string) error {
	var lv slog.Level
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "warning", "error":
		if err := lv.UnmarshalText([]byte(strings.TrimSuffix(strings.ToLower(s), "ing"))); err != nil {
			return err
		}
	default:
		return fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	l.level, l.set = lv, true
	return nil
}

// String implements pflag.Value.
func (l *Level) String() string {
	if !l.set {
		return ""
	}
	return strings.ToLower(l.level.String())
}

// Type implements pflag.Value.
func (l *Level) Type() string { return "level" }

// Or returns the level if it was set, else def.
func (l *Level) Or(def slog.Level) slog.Level {
	if l.set {
		return l.level
	}
	return def
}

// New returns a logger writing lines of format f at level and above to w.
func New(w io.Writer, level slog.Leveler, f Format) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f == JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
