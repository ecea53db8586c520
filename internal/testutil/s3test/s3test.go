package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EnvRequire makes a missing versitygw fail the test instead of skipping it.
const EnvRequire = "HOLDFAST_REQUIRE_S3"

// The root credentials of the server.
const (
	AccessKey = "holdfast-test-access"
	SecretKey = "holdfast-test-secret-0123456789"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is 127.0.0.1:PORT (plain HTTP).
	Endpoint string
	// Root is the posix directory whose sub-directories are the buckets.
	Root string
}

// Binary finds versitygw: $PATH, then $GOBIN / $GOPATH/bin / ~/go/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("versitygw not found (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
}

// Start runs versitygw until the test ends. It skips (or fails, see
// EnvRequire) when versitygw is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv(EnvRequire) != "" {
			t.Fatalf("%s is set: %v", EnvRequire, err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	root, vdir := filepath.Join(dir, "root"), filepath.Join(dir, "versions")
	for _, d := range []string{root, vdir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		endpoint := fmt.Sprintf("127.0.0.1:%d", port)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "--port", endpoint, "posix", "--versioning-dir", vdir, root)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitListening(endpoint, exited); err != nil {
			cancel()
			if attempt < 3 && strings.Contains(out.String(), "address already in use") {
				continue // the port was taken between freePort and the bind
			}
			t.Fatalf("versitygw: %v\n%s", err, out.String())
		}
		t.Cleanup(func() {
			cancel()
			<-exited
		})
		return &Server{Endpoint: endpoint, Root: root}
	}
}

// waitListening waits until the server accepts connections or exits.
func waitListening(endpoint string, exited <-chan error) error {
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", endpoint, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening: %v", err)
		case <-deadline.C:
			return errors.New("not listening after 60 s")
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Getenv returns an environment for the S3 backend with the server's keys.
func (s *Server) Getenv(name string) string {
	switch name {
	case "AWS_ACCESS_KEY_ID":
		return AccessKey
	case "AWS_SECRET_ACCESS_KEY":
		return SecretKey
	case "AWS_REGION":
		return "us-east-1"
	}
	return ""
}

// URL returns s3+http://ENDPOINT/BUCKET[/PREFIX].
func (s *Server) URL(bucket, prefix string) string {
	u := "s3+http://" + s.Endpoint + "/" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u
}
