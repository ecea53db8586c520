package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/throttle"
	"github.com/spf13/pflag"
)

// A backup job's definition, as `job create` sends it (the server stores
// it as given, sealing the password into "password_secret"):
//
//	{"vms": [{"name": "vm1", "disks": ["/path/to/vm1.img"]}],
//	 "repository": "repo1", "retention": {"keep_last": 7},
//	 "chunk_size": 1048576, "compression": "fast", "transport": "auto"}

// jobJSON is the API's view of a job.
type jobJSON struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Definition  json.RawMessage `json:"definition"`
	Schedule    string          `json:"schedule"`
	Enabled     bool            `json:"enabled"`
	PasswordRef string          `json:"password_ref"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

// jobDef is the part of a definition the CLI shows; VMs may be names or
// {"name","disks"} objects.
type jobDef struct {
	VMs    []json.RawMessage `json:"vms"`
	Select []struct {
		Source  string `json:"source"`
		Pattern string `json:"pattern"`
	} `json:"select"`
	Repository string `json:"repository"`
	Retention  struct {
		KeepLast int `json:"keep_last"`
	} `json:"retention"`
	ChunkSize   int    `json:"chunk_size"`
	Compression string `json:"compression"`
	Transport   string `json:"transport"`
	Guest       struct {
		PreFreeze      string `json:"pre_freeze"`
		PostThaw       string `json:"post_thaw"`
		Policy         string `json:"policy"`
		TimeoutSeconds int    `json:"timeout_seconds"`
		User           string `json:"user"`
	} `json:"guest"`
	GuestKeyRef string `json:"guest_ssh_key_secret"`
	Retries     struct {
		Count       int `json:"count"`
		WaitSeconds int `json:"wait_seconds"`
	} `json:"retries"`
	Format          string            `json:"format"`
	DiskFormats     map[string]string `json:"disk_formats"`
	RecordedFormats map[string]string `json:"recorded_formats"`
	FollowBacking   bool              `json:"follow_backing"`
}

type jobVM struct {
	Name  string   `json:"name"`
	Disks []string `json:"disks"`
}

// vmList renders the VMs as "vm1=/a.img,/b.img vm2".
func (d jobDef) vmList() string {
	var out []string
	for _, raw := range d.VMs {
		var name string
		if json.Unmarshal(raw, &name) == nil {
			out = append(out, name)
			continue
		}
		var vm jobVM
		if json.Unmarshal(raw, &vm) != nil {
			out = append(out, string(raw))
			continue
		}
		s := vm.Name
		if len(vm.Disks) > 0 {
			s += "=" + strings.Join(vm.Disks, ",")
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// jobFlags are the flags of `job create` and `job edit`.
type jobFlags struct {
	vms                                     []string
	repository, schedule                    string
	chunkSize, compression, transport, kind string
	retentionLast                           int
	readLimit                               string
	throttle                                []string
	retries                                 int
	retryWait                               time.Duration
	preFreeze, postThaw, guestPolicy        string
	guestUser, guestKey                     string
	guestTimeout                            time.Duration
	guestSSH, guestHostKey, guestAgent      []string
	vmsFrom                                 []string
	formats                                 []string
	followBacking                           bool
}

func (f *jobFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.vms, "vm", nil, "VM to back up, NAME=DISK[,DISK…] (repeat for more VMs; a repeated NAME adds disks)")
	fs.StringArrayVar(&f.vmsFrom, "vms-from", nil, "select VMs from a source when a session starts: SOURCE[=GLOB] (image directory: one VM per image file or NAME-diskN set; NBD server: one VM per export)")
	fs.StringVar(&f.repository, "repository", "", "repository (agent name) to back up to")
	fs.StringVar(&f.schedule, "schedule", "", "cron expression, e.g. '0 2 * * *' (empty: run on demand only)")
	fs.IntVar(&f.retentionLast, "retention-last", 0, "keep the last N restore points per VM (0: keep all)")
	fs.StringVar(&f.chunkSize, "chunk-size", "", "chunk size, e.g. 1MiB (default: the repository's)")
	fs.StringVar(&f.compression, "compression", "", "compression: none, fast, optimal or high (default: the repository's)")
	fs.StringVar(&f.transport, "transport", "", "preferred transport: "+source.PreferenceNames()+" (default auto)")
	fs.StringVar(&f.kind, "kind", "backup", "job kind")
	fs.StringVar(&f.preFreeze, "pre-freeze", "", "guest processing: script FILE run in each guest before its snapshot")
	fs.StringVar(&f.postThaw, "post-thaw", "", "guest processing: script FILE run in each guest after its snapshot")
	fs.DurationVar(&f.guestTimeout, "guest-timeout", 10*time.Minute, "guest processing: time limit per script")
	fs.StringVar(&f.guestPolicy, "guest-policy", "fail", "guest processing: when a script fails, fail the VM or warn and continue (fail, warn)")
	fs.StringVar(&f.guestUser, "guest-user", "root", "guest processing: SSH user")
	fs.StringVar(&f.guestKey, "guest-key", "", "guest processing: SSH private key FILE (sealed on the server, never shown)")
	fs.StringArrayVar(&f.guestSSH, "guest-ssh", nil, "guest processing: VM=HOST:PORT of the guest's sshd (repeat per VM)")
	fs.StringArrayVar(&f.guestHostKey, "guest-host-key", nil, "guest processing: VM=SHA256:… pinned host key of the guest (repeat per VM)")
	fs.StringArrayVar(&f.guestAgent, "guest-agent", nil, "guest processing: VM=SOCKET of the QEMU guest agent, used when SSH has no path (repeat per VM)")
	fs.IntVar(&f.retries, "retries", 0, "re-run a failed VM this many times (all its disks, a new snapshot)")
	fs.DurationVar(&f.retryWait, "retry-wait", 10*time.Second, "wait before each re-run of a failed VM")
	fs.StringVar(&f.readLimit, "read-limit", "", "pace reads from each disk, e.g. 50MiB/s (default: unlimited)")
	fs.StringArrayVar(&f.formats, "format", nil, "image format of the file disks: FORMAT for every one, or DISK=FORMAT for one (raw, qcow2, vmdk;\nauto forgets the format recorded at the first backup and detects it again); repeat for more")
	fs.BoolVar(&f.followBacking, "follow-backing", false, "read the backing chain of disks given as qcow2 with --format (only for images the host made)")
	fs.StringArrayVar(&f.throttle, "throttle", nil, "traffic rule for the proxy → repository link, e.g. 'wan: 10.0.0.0/8 -> any 10MiB/s mon-fri 08:00-18:00' (repeat for more)")
}

// parseVMs turns --vm flags into the definition's "vms" list.
func parseVMs(specs []string) ([]jobVM, error) {
	var vms []jobVM
	index := map[string]int{}
	for _, s := range specs {
		name, disks, ok := strings.Cut(s, "=")
		if !ok || name == "" || disks == "" {
			return nil, usageError{fmt.Errorf("--vm %q: want NAME=DISK[,DISK…]", s)}
		}
		if err := repo.ValidateVMName(name); err != nil {
			return nil, usageError{fmt.Errorf("--vm %q: %w", s, err)}
		}
		i, seen := index[name]
		if !seen {
			i = len(vms)
			index[name] = i
			vms = append(vms, jobVM{Name: name})
		}
		for _, d := range strings.Split(disks, ",") {
			if d != "" {
				vms[i].Disks = append(vms[i].Disks, d)
			}
		}
	}
	return vms, nil
}

// apply sets the definition keys of the flags that changed (all given
// flags on create) in def.
func (f *jobFlags) apply(def map[string]any, changed func(string) bool) error {
	if changed("vm") {
		vms, err := parseVMs(f.vms)
		if err != nil {
			return err
		}
		forgetDroppedFormats(def, vms)
		def["vms"] = vms
	}
	if changed("repository") {
		def["repository"] = f.repository
	}
	if changed("vms-from") {
		var sel []map[string]string
		for _, spec := range f.vmsFrom {
			src, pattern, _ := strings.Cut(spec, "=")
			if src == "" {
				return usageError{fmt.Errorf("--vms-from %q: want SOURCE[=GLOB]", spec)}
			}
			sel = append(sel, map[string]string{"source": src, "pattern": pattern})
		}
		def["select"] = sel
	}
	if changed("retention-last") {
		if f.retentionLast < 0 {
			return usageError{errors.New("--retention-last must not be negative")}
		}
		def["retention"] = map[string]int{"keep_last": f.retentionLast}
	}
	if changed("chunk-size") {
		n, err := parseSize(f.chunkSize)
		if err != nil || n <= 0 {
			return usageError{fmt.Errorf("--chunk-size %q: want a size such as 1MiB", f.chunkSize)}
		}
		def["chunk_size"] = n
	}
	if changed("compression") {
		if err := repo.ValidateCompression(f.compression); err != nil {
			return usageError{err}
		}
		def["compression"] = f.compression
	}
	if changed("retries") || changed("retry-wait") {
		if f.retries < 0 || f.retryWait < 0 {
			return usageError{errors.New("--retries and --retry-wait must not be negative")}
		}
		def["retries"] = map[string]int{"count": f.retries, "wait_seconds": int(f.retryWait / time.Second)}
	}
	if err := f.applyGuest(def, changed); err != nil {
		return err
	}
	if changed("read-limit") {
		n, err := throttle.ParseRate(f.readLimit)
		if err != nil || n <= 0 {
			return usageError{fmt.Errorf("--read-limit %q: want a rate such as 50MiB/s", f.readLimit)}
		}
		def["read_limit"] = n
	}
	if changed("throttle") {
		if _, err := throttle.ParseRules(strings.Join(f.throttle, "\n"), nil); err != nil {
			return usageError{fmt.Errorf("--throttle: %w", err)}
		}
		def["throttle"] = f.throttle
	}
	if changed("format") {
		if err := applyFormats(def, f.formats); err != nil {
			return err
		}
	}
	if changed("follow-backing") {
		def["follow_backing"] = f.followBacking
	}
	if changed("transport") {
		if _, err := source.ParsePreference(f.transport); err != nil || f.transport == "" {
			return usageError{fmt.Errorf("--transport %q: want %s", f.transport, source.PreferenceNames())}
		}
		def["transport"] = f.transport
	}
	return nil
}

// decodeDefinition parses a stored definition into a map, keeping numbers.
func decodeDefinition(raw json.RawMessage) (map[string]any, error) {
	def := map[string]any{}
	if len(raw) == 0 || string(raw) == "null" {
		return def, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&def); err != nil {
		return nil, fmt.Errorf("job definition: %w", err)
	}
	return def, nil
}

// jobPassword reads --password-file, if given ("" otherwise). The password
// goes into the request only; it is never printed.
func (a *app) jobPassword() (string, error) {
	if a.passwordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(a.passwordFile)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", usageError{fmt.Errorf("password file %s is empty", a.passwordFile)}
	}
	return pw, nil
}

// showJob prints one job as "field: value" lines.
func (a *app) showJob(j jobJSON) error {
	var d jobDef
	_ = json.Unmarshal(j.Definition, &d)
	enabled := "no"
	if j.Enabled {
		enabled = "yes"
	}
	rows := [][]string{
		{"Name:", j.Name}, {"Kind:", orDash(j.Kind)}, {"Enabled:", enabled},
		{"Schedule:", orDash(j.Schedule)}, {"Repository:", orDash(d.Repository)}, {"VMs:", orDash(d.vmList())},
	}
	for _, sel := range d.Select {
		rows = append(rows, []string{"Selects:", "VMs matching " + orDash(sel.Pattern) + " in source " + sel.Source})
	}
	if d.Retention.KeepLast > 0 {
		rows = append(rows, []string{"Retention:", fmt.Sprintf("keep last %d", d.Retention.KeepLast)})
	}
	if d.ChunkSize > 0 {
		rows = append(rows, []string{"Chunk size:", formatBytes(int64(d.ChunkSize))})
	}
	if d.Compression != "" {
		rows = append(rows, []string{"Compression:", d.Compression})
	}
	if d.Transport != "" {
		rows = append(rows, []string{"Transport:", d.Transport})
	}
	rows = append(rows, d.formatRows()...)
	if d.Retries.Count > 0 {
		rows = append(rows, []string{"Retries:", fmt.Sprintf("%d, %ds apart", d.Retries.Count, d.Retries.WaitSeconds)})
	}
	if g := d.Guest; g.PreFreeze != "" || g.PostThaw != "" {
		var scripts []string
		if g.PreFreeze != "" {
			scripts = append(scripts, fmt.Sprintf("pre-freeze (%d bytes)", len(g.PreFreeze)))
		}
		if g.PostThaw != "" {
			scripts = append(scripts, fmt.Sprintf("post-thaw (%d bytes)", len(g.PostThaw)))
		}
		key := "no SSH key"
		if d.GuestKeyRef != "" {
			key = "SSH key sealed on the server (" + d.GuestKeyRef + ")"
		}
		rows = append(rows, []string{"Guest:", fmt.Sprintf("%s; policy %s; timeout %ds; user %s; %s",
			strings.Join(scripts, ", "), orDash(g.Policy), g.TimeoutSeconds, orDash(g.User), key)})
	}
	pw := "none"
	if j.PasswordRef != "" {
		pw = "sealed on the server (" + j.PasswordRef + ")"
	}
	rows = append(rows, []string{"Password:", pw},
		[]string{"Created:", fmtTime(&j.Created)}, []string{"Updated:", fmtTime(&j.Updated)})
	return table(a.stdout, []string{"Job:", j.Name}, rows[1:])
}

// applyGuest sets the guest processing keys of the flags that changed.
func (f *jobFlags) applyGuest(def map[string]any, changed func(string) bool) error {
	g, _ := def["guest"].(map[string]any)
	if g == nil {
		g = map[string]any{}
	}
	scripts := []struct{ flag, key, file string }{{"pre-freeze", "pre_freeze", f.preFreeze}, {"post-thaw", "post_thaw", f.postThaw}}
	for _, sc := range scripts {
		if !changed(sc.flag) {
			continue
		}
		g[sc.key] = ""
		if sc.file != "" {
			b, err := os.ReadFile(sc.file)
			if err != nil {
				return fmt.Errorf("--%s: %w", sc.flag, err)
			}
			g[sc.key] = string(b)
		}
	}
	if changed("guest-timeout") {
		if f.guestTimeout < time.Second {
			return usageError{errors.New("--guest-timeout must be at least 1s")}
		}
		g["timeout_seconds"] = int(f.guestTimeout / time.Second)
	}
	if changed("guest-policy") {
		if f.guestPolicy != "fail" && f.guestPolicy != "warn" {
			return usageError{fmt.Errorf("--guest-policy %q: want fail or warn", f.guestPolicy)}
		}
		g["policy"] = f.guestPolicy
	}
	if changed("guest-user") {
		g["user"] = f.guestUser
	}
	if len(g) > 0 {
		def["guest"] = g
	}
	if changed("guest-key") {
		b, err := os.ReadFile(f.guestKey)
		if err != nil {
			return fmt.Errorf("--guest-key: %w", err)
		}
		def["guest_ssh_key"] = string(b) // the server seals it
	}
	perVM := []struct {
		flag, key string
		specs     []string
	}{{"guest-ssh", "guest_ssh", f.guestSSH}, {"guest-host-key", "guest_host_key", f.guestHostKey},
		{"guest-agent", "guest_agent", f.guestAgent}}
	for _, pv := range perVM {
		if !changed(pv.flag) {
			continue
		}
		if err := setVMField(def, pv.flag, pv.key, pv.specs); err != nil {
			return err
		}
	}
	return nil
}

// setVMField sets key of the VMs named in specs (VM=VALUE) in def["vms"].
func setVMField(def map[string]any, flag, key string, specs []string) error {
	raw, _ := json.Marshal(def["vms"])
	var vms []map[string]any
	if err := json.Unmarshal(raw, &vms); err != nil {
		return usageError{fmt.Errorf("--%s needs the job's VMs given with --vm NAME=DISK", flag)}
	}
	for _, spec := range specs {
		name, value, ok := strings.Cut(spec, "=")
		if !ok || name == "" || value == "" {
			return usageError{fmt.Errorf("--%s %q: want VM=VALUE", flag, spec)}
		}
		found := false
		for _, vm := range vms {
			if vm["name"] == name {
				vm[key], found = value, true
			}
		}
		if !found {
			return usageError{fmt.Errorf("--%s: the job has no VM %q", flag, name)}
		}
	}
	def["vms"] = vms
	return nil
}
