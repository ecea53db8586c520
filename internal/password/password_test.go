package password

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fromFile := file("pw", "file-secret\n")
	crlf := file("crlf", " spaced secret \r\n")
	twoLines := file("two", "a\n\n")
	empty := file("empty", "\n")
	const secret = "hunter2-out"
	tests := []struct {
		name    string
		s       Sources
		env     map[string]string
		want    string
		wantErr error
	}{
		{name: "nothing", wantErr: ErrNoSource},
		{name: "env password", env: map[string]string{EnvPassword: "env-secret"}, want: "env-secret"},
		{name: "flag file beats every variable", s: Sources{File: fromFile},
			env: map[string]string{EnvPassword: "x", EnvFile: crlf, EnvCommand: "false"}, want: "file-secret"},
		{name: "flag command beats every variable", s: Sources{Command: "printf 'cmd secret\\n'"},
			env: map[string]string{EnvPassword: "x", EnvFile: crlf, EnvCommand: "false"}, want: "cmd secret"},
		{name: "env file beats env password", env: map[string]string{EnvPassword: "x", EnvFile: crlf}, want: " spaced secret "},
		{name: "env command beats env password", env: map[string]string{EnvPassword: "x", EnvCommand: `printf "%s" 'a b'`}, want: "a b"},
		{name: "only one line end is trimmed", s: Sources{File: twoLines}, want: "a\n"},
		{name: "both flags", s: Sources{File: fromFile, Command: "true"}, wantErr: ErrUsage},
		{name: "both variables", env: map[string]string{EnvFile: fromFile, EnvCommand: "true"}, wantErr: ErrUsage},
		{name: "empty file", s: Sources{File: empty}, wantErr: ErrUsage},
		{name: "empty command output", s: Sources{Command: "true"}, wantErr: ErrUsage},
		{name: "blank command", s: Sources{Command: "  "}, wantErr: ErrUsage},
		{name: "unterminated quote", s: Sources{Command: "echo 'x"}, wantErr: ErrUsage},
		{name: "failing command", s: Sources{Command: "sh -c 'echo " + secret + "; exit 3'"}, wantErr: ErrCommand},
		{name: "missing program", s: Sources{Command: filepath.Join(dir, "no-such-program")}, wantErr: ErrCommand},
		{name: "no shell: a semicolon is an argument", s: Sources{Command: "echo a; false"}, want: "a; false"},
		{name: "missing file", s: Sources{File: filepath.Join(dir, "none")}, wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			s.Getenv = func(k string) string { return tt.env[k] }
			got, err := s.Read(context.Background())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "echo") {
					t.Fatalf("error %q shows the command or its output", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Read = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestReadFlagsOnlyIgnoresEnvironment(t *testing.T) {
	t.Setenv(EnvPassword, "from-env")
	if _, err := (Sources{}).Read(context.Background()); !errors.Is(err, ErrNoSource) {
		t.Fatalf("without Getenv: err = %v, want ErrNoSource", err)
	}
}

func TestReadCommandCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Sources{Command: "sleep 60"}.Read(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "", want: nil},
		{in: "  pass  show\tvm/backup \n", want: []string{"pass", "show", "vm/backup"}},
		{in: `cat '/my dir/pw file'`, want: []string{"cat", "/my dir/pw file"}},
		{in: `echo "a \"b\" \\ c \$x"`, want: []string{"echo", `a "b" \ c \$x`}},
		{in: `echo a\ b`, want: []string{"echo", "a b"}},
		{in: `x''y ""`, want: []string{"xy", ""}},
		{in: `echo $HOME *; rm -rf /`, want: []string{"echo", "$HOME", "*;", "rm", "-rf", "/"}},
		{in: `echo 'x`, err: true},
		{in: `echo "x`, err: true},
		{in: `echo x\`, err: true},
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if tt.err {
			if !errors.Is(err, ErrQuote) {
				t.Errorf("Split(%q) err = %v, want ErrQuote", tt.in, err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{`a 'b c' "d\"e" f\ g`, `'`, `"\\`, "x\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		for _, w := range words {
			if len(w) > len(s) {
				t.Fatalf("word %q longer than the input %q", w, s)
			}
		}
	})
}
