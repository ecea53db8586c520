package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedPointIsIsolated: one damaged file under points/ (or one
// damaged index) must not stop the others: points lists them, another VM
// backs up, forget works, verify names the damage (exit 5) and gc frees
// only what nothing references — or nothing at all when it cannot know.
func TestDamagedPointIsIsolated(t *testing.T) {
	type damage struct {
		name string
		// harm damages the repository and returns the file to name and
		// the files to put back afterwards (path → original content).
		harm         func(t *testing.T, repoDir, victim string) (string, map[string][]byte)
		verifyDamage bool // verify exits 5 (else 0 with a warning)
		gcFrees      bool // gc collects the forgotten point (else stops: nothing deleted)
	}
	save := func(t *testing.T, files ...string) map[string][]byte {
		orig := map[string][]byte{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			orig[f] = b
		}
		return orig
	}
	manifest := func(dir, id string) string { return filepath.Join(dir, "points", id) }
	index := func(dir, id string) string { return filepath.Join(dir, "indexes", id, "disk-0") }
	cases := []damage{
		{name: "truncated manifest", verifyDamage: true, gcFrees: true,
			harm: func(t *testing.T, dir, id string) (string, map[string][]byte) {
				orig := save(t, manifest(dir, id))
				if err := os.Truncate(manifest(dir, id), int64(len(orig[manifest(dir, id)])/2)); err != nil {
					t.Fatal(err)
				}
				return "points/" + id, orig
			}},
		{name: "garbage manifest", verifyDamage: true, gcFrees: true,
			harm: func(t *testing.T, dir, id string) (string, map[string][]byte) {
				orig := save(t, manifest(dir, id))
				if err := os.WriteFile(manifest(dir, id), randomBytes(300), 0o600); err != nil {
					t.Fatal(err)
				}
				return "points/" + id, orig
			}},
		{name: "garbage manifest and corrupt index", verifyDamage: true, gcFrees: false,
			harm: func(t *testing.T, dir, id string) (string, map[string][]byte) {
				orig := save(t, manifest(dir, id), index(dir, id))
				_ = os.WriteFile(manifest(dir, id), []byte("{}"), 0o600)
				_ = os.WriteFile(index(dir, id), randomBytes(100), 0o600)
				return "points/" + id, orig
			}},
		{name: "stray file name", verifyDamage: false, gcFrees: true,
			harm: func(t *testing.T, dir, id string) (string, map[string][]byte) {
				stray := filepath.Join(dir, "points", "notes.txt")
				_ = os.WriteFile(stray, []byte("not a manifest"), 0o600)
				return "points/notes.txt", map[string][]byte{}
			}},
		{name: "corrupt index", verifyDamage: true, gcFrees: false,
			harm: func(t *testing.T, dir, id string) (string, map[string][]byte) {
				orig := save(t, index(dir, id))
				b := append([]byte(nil), orig[index(dir, id)]...)
				b[len(b)/2] ^= 0x40
				_ = os.WriteFile(index(dir, id), b, 0o600)
				return "indexes/" + id + "/disk-0", orig
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.init("--chunk-size", "256KiB")
			img1, img2 := filepath.Join(e.dir, "vm1.img"), filepath.Join(e.dir, "vm2.img")
			writeImage(t, img1, 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
			writeImage(t, img2, 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
			victim := e.backupJSON("vm1", img1).Point
			e.backupJSON("vm2", img2)

			named, orig := tc.harm(t, e.repo, victim)

			r := e.run("points")
			wantListed := 2
			if strings.HasPrefix(named, "points/") && named != "points/notes.txt" {
				wantListed = 1
				if strings.Contains(r.stdout, victim) {
					t.Errorf("points lists the damaged point:\n%s", r.stdout)
				}
			}
			if r.code != 0 || !strings.Contains(r.stdout, "vm2") || strings.Count(r.stdout, "\n") != wantListed+1 {
				t.Fatalf("points: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if strings.HasPrefix(named, "points/") && !strings.Contains(r.stderr, named) {
				t.Errorf("points does not warn about %s: %q", named, r.stderr)
			}

			// Another VM backs up (twice: the first point is then forgotten).
			writeImage(t, img2, 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
			e.backupJSON("vm2", img2)
			e.ok("forget", "--vm", "vm2", "--keep-last", "1")

			r = e.run("verify")
			if tc.verifyDamage && (r.code != exitDamage || !strings.Contains(r.stdout, named)) {
				t.Errorf("verify: exit %d, want %d naming %s:\n%s", r.code, exitDamage, named, r.stdout)
			}
			if !tc.verifyDamage && (r.code != 0 || !strings.Contains(r.stderr, named)) {
				t.Errorf("verify: exit %d, want 0 with a warning naming %s:\n%s%s", r.code, named, r.stdout, r.stderr)
			}

			r = e.run("gc", "--json", "--grace", "0s")
			if tc.gcFrees {
				var res map[string]any
				if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res["removed_chunks"].(float64) != 4 {
					t.Errorf("gc: exit %d, want 4 chunks of the forgotten point removed:\n%s%s", r.code, r.stdout, r.stderr)
				}
			} else if r.code != exitDamage || !strings.Contains(r.stderr, "nothing deleted") || !strings.Contains(r.stderr, victim) {
				t.Errorf("gc: exit %d, want %d and nothing deleted, naming %s:\n%s%s", r.code, exitDamage, victim, r.stdout, r.stderr)
			}

			// Repaired, everything the damaged point referenced is still there.
			for f, b := range orig {
				if err := os.WriteFile(f, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			os.Remove(filepath.Join(e.repo, "points", "notes.txt"))
			e.ok("verify", "--read-data")
			out := filepath.Join(e.dir, "out.img")
			e.ok("restore", victim, "--to", out)
			sameFile(t, img1, out)
		})
	}
}

// TestEditedConfigIsDamage: an edited config is reported as a damaged
// repository (exit 5), not as a wrong password or accepted silently.
func TestEditedConfigIsDamage(t *testing.T) {
	for _, tc := range []struct{ field, value string }{
		{"chunk_size", "524288"},
		{"id", `"00112233445566778899aabbccddeeff"`},
		{"encryption", `"none"`},
	} {
		t.Run(tc.field, func(t *testing.T) {
			e := newEnv(t)
			e.init()
			p := filepath.Join(e.repo, "config")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var c map[string]json.RawMessage
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			c[tc.field] = json.RawMessage(tc.value)
			b, _ = json.Marshal(c)
			_ = os.WriteFile(p, b, 0o600)
			r := e.run("points")
			if r.code != exitDamage || !strings.Contains(r.stderr, "config") {
				t.Fatalf("points after editing %s: exit %d, want %d naming the config: %s", tc.field, r.code, exitDamage, r.stderr)
			}
		})
	}
}
