package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Eicar is the EICAR anti-malware test string.
const Eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// fakeEngine writes a script standing in for an engine: --version prints
// version; a scan prints stdout (ROOT replaced by the first directory
// argument, the last argument), stderr, and exits with code.
func fakeEngine(t *testing.T, version, stdout, stderr string, code int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // the engine runs as the scan user and writes args here
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out"), []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "err"), []byte(stderr), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
if [ "$1" = --version ]; then echo '` + version + `'; exit 0; fi
for a; do last=$a; done
echo "$@" > ` + dir + `/args
sed "s|ROOT|$last|g" ` + dir + `/out
cat ` + dir + `/err >&2
exit ` + string(rune('0'+code)) + "\n"
	p := filepath.Join(dir, "engine")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func testDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.hdb"), []byte("44d88612fea8a8f36de82e1278abb02f:68:eicar.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEngineFake(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	ts := []Target{{Name: "disk0-p1", Root: root}}
	tests := []struct {
		name, engine, stdout, stderr string
		code                         int
		result                       string
		count                        int
		errText                      string
	}{
		{"clamscan clean", ClamScan, "", "", 0, repo.ScanClean, 0, ""},
		{"clamscan found", ClamScan, "ROOT/a/b.exe: Win.Trojan FOUND\nROOT/c\nd: Eicar FOUND\n", "", 1, repo.ScanInfected, 2, ""},
		{"clamscan found, unparsable", ClamScan, "something else\n", "", 1, repo.ScanInfected, 1, ""},
		{"clamscan error", ClamScan, "", "LibClamAV Error: cl_load(): bad database\n", 2, repo.ScanFailed, 0, "bad database"},
		{"clamscan error and found", ClamScan, "ROOT/x: Eicar FOUND\n", "ERROR: Can't open file\n", 2, repo.ScanInfected, 1, "Can't open"},
		{"clamscan killed", ClamScan, "", "", 9, repo.ScanFailed, 0, "exited 9"},
		{"clamscan exit 0 with a libclamav error", ClamScan, "", "LibClamAV Warning: x\nLibClamAV Error: cli_scandesc: Can't read file\n", 0, repo.ScanFailed, 0, "Can't read file"},
		{"clamscan exit 0 with a libclamav error past the cap", ClamScan, "", strings.Repeat("LibClamAV Warning: noise\n", 400) + "LibClamAV Error: late\n", 0, repo.ScanFailed, 0, "past the first"},
		{"clamscan exit 0 with a finding line", ClamScan, "ROOT/x: Eicar FOUND\n", "", 0, repo.ScanInfected, 1, ""},
		{"clamscan limits only", ClamScan, "ROOT/big: Heuristics.Limits.Exceeded.MaxFileSize FOUND\n", "", 1, repo.ScanFailed, 0, "not fully scanned: 1 file(s)"},
		{"clamscan limits and found", ClamScan, "ROOT/big: Heuristics.Limits.Exceeded.MaxFileSize FOUND\nROOT/x: Eicar FOUND\n", "", 1, repo.ScanInfected, 1, "disk0-p1:/big (MaxFileSize)"},
		{"yara clean", Yara, "", "warning: slow rule\n", 0, repo.ScanClean, 0, ""},
		{"yara found", Yara, "eicar ROOT/x y\nother ROOT/z\n", "", 0, repo.ScanInfected, 2, ""},
		{"yara error", Yara, "", "error: rule \"x\" in r.yar(1): syntax error\n", 1, repo.ScanFailed, 0, "syntax error"},
		{"yara error escaped", Yara, "", "error scanning \x1b[2J\n", 1, repo.ScanFailed, 0, `\x1b[2J`},
	}
	rules := filepath.Join(t.TempDir(), "r.yar")
	if err := os.WriteFile(rules, []byte("rule x { condition: true }"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prog := fakeEngine(t, "ClamAV 1.4.6/27000/Thu", tc.stdout, tc.stderr, tc.code)
			e, err := New(ctx, Options{Engine: tc.engine, Program: prog, ClamAVDB: testDB(t), YaraRules: rules})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := e.Scan(ctx, ts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Result != tc.result || rep.Count != tc.count || !strings.Contains(rep.Error, tc.errText) || strings.Contains(rep.Error, "\x1b") {
				t.Fatalf("report %+v", rep)
			}
			if (rep.Err() == nil) != (tc.result == repo.ScanClean) || errors.Is(rep.Err(), ErrNotScanned) != (tc.result == repo.ScanFailed) ||
				errors.Is(rep.Err(), ErrInfected) != (tc.result == repo.ScanInfected) {
				t.Fatalf("Err %v for %s", rep.Err(), rep.Result)
			}
			for _, f := range rep.Findings {
				if f.Filesystem != "disk0-p1" || !strings.HasPrefix(f.Path, "/") || strings.HasPrefix(f.Path, root) || f.Engine != tc.engine {
					t.Fatalf("finding %+v", f)
				}
			}
			if tc.engine == ClamScan && e.Version() != "ClamAV 1.4.6 (limits raised)" || !strings.HasPrefix(e.Database(), "sha256:") {
				t.Fatalf("identity %q %q", e.Version(), e.Database())
			}
			args, _ := os.ReadFile(filepath.Join(filepath.Dir(prog), "args"))
			if tc.engine == ClamScan && !strings.Contains(string(args), "--follow-file-symlinks=0") ||
				tc.engine == Yara && !strings.Contains(string(args), "-N") {
				t.Fatalf("symbolic links followed: %s", args)
			}
		})
	}
}

// TestEngineNotScanned: what keeps an engine from running is found before
// a scan, and a scan of nothing is not clean.
func TestEngineNotScanned(t *testing.T) {
	ctx := context.Background()
	prog := fakeEngine(t, "ClamAV 1.4.6", "", "", 0)
	empty := t.TempDir()
	for name, o := range map[string]Options{
		"no program":     {Program: filepath.Join(empty, "clamscan"), ClamAVDB: testDB(t)},
		"no database":    {Program: prog, ClamAVDB: filepath.Join(empty, "db")},
		"empty database": {Program: prog, ClamAVDB: empty},
		"no yara rules":  {Engine: Yara, Program: prog},
		"missing rules":  {Engine: Yara, Program: prog, YaraRules: filepath.Join(empty, "r.yar")},
		"no version":     {Program: fakeEngine(t, "", "", "", 0), ClamAVDB: testDB(t)},
	} {
		if _, err := New(ctx, o); !errors.Is(err, ErrNotScanned) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := New(ctx, Options{Engine: "sophos"}); err == nil || errors.Is(err, ErrNotScanned) {
		t.Errorf("unknown engine: %v", err)
	}
	e, err := New(ctx, Options{Program: prog, ClamAVDB: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := e.Scan(ctx, nil); err != nil || rep.Result != repo.ScanFailed || !errors.Is(rep.Err(), ErrNotScanned) {
		t.Fatalf("scan of nothing: %+v %v", rep, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Scan(cctx, []Target{{Name: "x", Root: empty}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled scan: %v", err)
	}
}

// TestDatabaseIdentity: the identity changes with the database's content.
func TestDatabaseIdentity(t *testing.T) {
	db := testDB(t)
	a, err := hashDatabase(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(db, "more.ndb"), []byte("x:0:*:41414141\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := hashDatabase(db)
	if err != nil || a == b {
		t.Fatalf("identity %s → %s %v", a, b, err)
	}
}

// realTree is a directory with an EICAR file under an awkward name, a
// clean file and a symbolic link to a host file holding EICAR too (which
// must not be followed).
func realTree(t *testing.T) (root, hostEicar string) {
	t.Helper()
	root = t.TempDir()
	host := filepath.Join(t.TempDir(), "host-eicar.com")
	for name, data := range map[string]string{
		"clean.txt":             "hello\n",
		"sub/we: ird\nname.com": Eicar,
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(host, []byte(Eicar), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(root, "link.com")); err != nil {
		t.Fatal(err)
	}
	return root, host
}

// RealEngineOptions gives options for a real engine with a test database
// or rules matching EICAR, skipping the test when the engine is missing.
func realEngineOptions(t *testing.T, engine string) Options {
	t.Helper()
	if _, err := exec.LookPath(engine); err != nil {
		t.Skipf("%s not installed: %v", engine, err)
	}
	dir := t.TempDir()
	if engine == Yara {
		rules := filepath.Join(dir, "eicar.yar")
		rule := "rule eicar_test { strings: $e = \"EICAR-STANDARD-ANTIVIRUS-TEST-FILE\" condition: $e }\n"
		if err := os.WriteFile(rules, []byte(rule), 0o600); err != nil {
			t.Fatal(err)
		}
		return Options{Engine: Yara, YaraRules: rules}
	}
	return Options{Engine: ClamScan, ClamAVDB: testDB(t)}
}

func TestRealEngines(t *testing.T) {
	ctx := context.Background()
	for _, engine := range []string{ClamScan, Yara} {
		t.Run(engine, func(t *testing.T) {
			e, err := New(ctx, realEngineOptions(t, engine))
			if err != nil {
				t.Fatal(err)
			}
			root, _ := realTree(t)
			clean := t.TempDir()
			rep, err := e.Scan(ctx, []Target{{Name: "disk0-p1", Root: root}, {Name: "disk0-p2", Root: clean}})
			if err != nil {
				t.Fatal(err)
			}
			want := []Finding{{Filesystem: "disk0-p1", Path: "/sub/we: ird\nname.com", Engine: engine}}
			if rep.Result != repo.ScanInfected || rep.Count != 1 || len(rep.Findings) != 1 || rep.Duration <= 0 ||
				rep.Findings[0].Path != want[0].Path || rep.Findings[0].Filesystem != "disk0-p1" || rep.Findings[0].Signature == "" {
				t.Fatalf("report %+v", rep)
			}
			if rep, err = e.Scan(ctx, []Target{{Name: "disk0-p2", Root: clean}}); err != nil || rep.Result != repo.ScanClean {
				t.Fatalf("clean directory: %+v %v", rep, err)
			}
		})
	}
}

// TestClamscanLimits: a file over clamscan's default limits (100 MiB) is
// scanned, and one over the most it scans (2 GiB) makes the scan "not
// fully scanned", never clean.
func TestClamscanLimits(t *testing.T) {
	ctx := context.Background()
	o := realEngineOptions(t, ClamScan)
	root := t.TempDir()
	mid := filepath.Join(root, "mid.bin") // EICAR, then 150 MB of zeros: found by its MD5
	f, err := os.Create(mid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(Eicar); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 150<<20)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	sig, err := exec.Command("sigtool", "--md5", mid).Output()
	if err != nil {
		t.Skipf("sigtool: %v", err)
	}
	db := filepath.Join(t.TempDir(), "mid.hdb")
	if err := os.WriteFile(db, sig, 0o600); err != nil {
		t.Fatal(err)
	}
	o.ClamAVDB = db
	e, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Scan(ctx, []Target{{Name: "disk0-p1", Root: root}})
	if err != nil || rep.Result != repo.ScanInfected || rep.Count != 1 {
		t.Fatalf("a 150 MB infected file: %+v %v", rep, err)
	}
	if err := os.Remove(mid); err != nil {
		t.Fatal(err)
	}
	h, err := os.Create(filepath.Join(root, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	if err := os.Truncate(h.Name(), 2200<<20); err != nil { // sparse
		t.Fatal(err)
	}
	rep, err = e.Scan(ctx, []Target{{Name: "disk0-p1", Root: root}})
	if err != nil || rep.Result != repo.ScanFailed || rep.Count != 0 || !strings.Contains(rep.Error, "disk0-p1:/huge.bin (MaxFileSize)") {
		t.Fatalf("a 2.2 GB file: %+v %v", rep, err)
	}
}

// TestClamscanDeepTree: clamscan descends 15 directories by default and
// skips deeper files without a word; a guest's tree is scanned to its
// bottom.
func TestClamscanDeepTree(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, realEngineOptions(t, ClamScan))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	deep := root
	for i := range 40 {
		deep = filepath.Join(deep, fmt.Sprintf("d%d", i))
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "eicar.com"), []byte(Eicar), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Scan(ctx, []Target{{Name: "disk0-p1", Root: root}})
	if err != nil || rep.Result != repo.ScanInfected || rep.Count != 1 {
		t.Fatalf("EICAR 40 directories deep: %+v %v", rep, err)
	}
}

// TestEngineInterrupted: ending the context stops the engine and what it
// started at once (its process group), and the scan reports the
// interruption rather than a result.
func TestEngineInterrupted(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // the engine runs as the scan user
		t.Fatal(err)
	}
	started := filepath.Join(dir, "started")
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'ClamAV 1.4.6'; exit 0; fi\n" +
		"sleep 600 &\necho $! > " + started + ".tmp; mv " + started + ".tmp " + started + "\nwait\n"
	prog := filepath.Join(dir, "clamscan")
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Options{Program: prog, ClamAVDB: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Scan(ctx, []Target{{Name: "x", Root: dir}})
		done <- err
	}()
	var pid []byte
	for pid == nil { // wait for the engine's child to exist
		select {
		case err := <-done:
			t.Fatalf("scan ended before it was interrupted: %v", err)
		default:
		}
		pid, _ = os.ReadFile(started)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted scan: %v", err)
	}
	// Killed, the child goes within moments; alive, it would sleep 600 s.
	stat := "/proc/" + strings.TrimSpace(string(pid)) + "/stat"
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := os.ReadFile(stat)
		if err != nil || strings.Contains(string(st), ") Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engine's child outlived the scan: %s", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCappedAlarm finds the alarm split across writes and past the cap.
func TestCappedAlarm(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		found  bool
	}{
		{"none", []string{"LibClamAV Warning: x\n"}, false},
		{"whole", []string{"LibClamAV Error: x\n"}, true},
		{"split", []string{"noise LibClam", "AV Err", "or: x"}, true},
		{"past the cap", []string{strings.Repeat("n", 100), "LibClamAV Error"}, true},
		{"near miss", []string{"LibClamAV Erro", "r"[:0], "LibClamAV Warn"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &capped{max: 10, alarm: clamError}
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatal(n, err)
				}
			}
			if c.found != tc.found || c.buf.Len() > 10 {
				t.Errorf("found %v, kept %d bytes", c.found, c.buf.Len())
			}
		})
	}
}
