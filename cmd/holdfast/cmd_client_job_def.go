package main

import (
	"errors"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"os"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/throttle"
	"github.com/spf13/pflag"
)

// A backup job's definition is internal/jobdef's Definition: `job create`
// builds one from the flags, `job edit` changes the stored one, both check
// it (Validate) before sending it; the server checks it again and seals
// the password and guest SSH key.

// vmList renders the VMs as "vm1=/a.img,/b.img vm2".
func vmList(d jobdef.Definition) string {
	out := make([]string, 0, len(d.VMs))
	for _, vm := range d.VMs {
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
	chunkSize, compression, transport, kind string // compression: refused
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
	excludeFree, excludeSwap                bool
	excludePaths                            []string
	policy                                  policyFlags
	scan                                    scanAfterFlags
	copy                                    copyJobFlags
	notify                                  []string
}

func (f *jobFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.vms, "vm", nil, "VM to back up, NAME=DISK[,DISK…] (repeat for more VMs; a repeated NAME adds disks)")
	fs.StringArrayVar(&f.vmsFrom, "vms-from", nil, "select VMs from a source when a session starts: SOURCE[=GLOB] (image directory: one VM per image file or NAME-diskN set; NBD server: one VM per export;\nvSphere: SOURCE=GLOB, SOURCE=folder:/DC/vm/FOLDER or SOURCE=tag:[CATEGORY/]TAG;\nlibvirt: SOURCE=GLOB or SOURCE=metadata:KEY=VALUE on domain names and Holdfast metadata); repeat to add more")
	fs.StringVar(&f.repository, "repository", "", "repository (agent name) to back up to")
	fs.StringVar(&f.schedule, "schedule", "", "cron expression, e.g. '0 2 * * *' (empty: run on demand only)")
	f.policy.register(fs)
	f.scan.register(fs)
	f.copy.register(fs)
	fs.StringVar(&f.chunkSize, "chunk-size", "", "chunk size, e.g. 1MiB (default: the repository's)")
	fs.StringVar(&f.compression, "compression", "", "refused: compression is the repository's (holdfast repo init --compression)")
	_ = fs.MarkHidden("compression")
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
	fs.BoolVar(&f.excludeFree, "exclude-free", false, "leave out the free blocks of ext2/3/4 and xfs file systems (restored as zeros)")
	fs.BoolVar(&f.excludeSwap, "exclude-swap", false, "leave out swap partitions and swap files after their header page (restored as zeros)")
	fs.StringArrayVar(&f.excludePaths, "exclude", nil, "leave out the data of the files at or beneath PATH in the guests' file systems (restored as zeros); repeat for more")
	fs.StringArrayVar(&f.notify, "notify", nil, "send a message to notification target NAME when a session ends: NAME[:failure,warning,success] (default failure,warning;\nrepeat for more targets; job edit --notify '' sends none)")
	fs.StringArrayVar(&f.throttle, "throttle", nil, "traffic rule for the proxy → repository link (copy job: the server's links to both repositories), e.g. 'wan: 10.0.0.0/8 -> any 10MiB/s mon-fri 08:00-18:00' (repeat for more)")
}

// parseVMs turns --vm flags into the definition's "vms" list.
func parseVMs(specs []string) ([]jobdef.VM, error) {
	var vms []jobdef.VM
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
			vms = append(vms, jobdef.VM{Name: name})
		}
		for _, d := range strings.Split(disks, ",") {
			if d == "" {
				continue
			}
			if _, err := jobdef.ParseDisk(d); err != nil {
				return nil, usageError{fmt.Errorf("--vm %q: %w", s, err)}
			}
			vms[i].Disks = append(vms[i].Disks, d)
		}
	}
	return vms, nil
}

// apply sets the fields of the flags that changed (all given flags on
// create) in def, then validates the whole definition for a job of kind.
func (f *jobFlags) apply(def *jobdef.Definition, kind string, changed func(string) bool) error {
	if err := f.applyFields(def, changed); err != nil {
		return err
	}
	if err := def.ValidateKind(kind); err != nil {
		return usageError{fmt.Errorf("invalid job: %w", err)}
	}
	return nil
}

// applyFields sets the fields of the flags that changed.
func (f *jobFlags) applyFields(def *jobdef.Definition, changed func(string) bool) error {
	if changed("vm") {
		vms, err := parseVMs(f.vms)
		if err != nil {
			return err
		}
		forgetDroppedFormats(def, vms)
		def.VMs = vms
	}
	if changed("repository") {
		def.Repository = f.repository
	}
	if changed("vms-from") {
		def.Select = nil
		for _, spec := range f.vmsFrom {
			sel, err := jobdef.ParseSelection(spec)
			if err != nil {
				return usageError{fmt.Errorf("--vms-from %w", err)}
			}
			def.Select = append(def.Select, sel)
		}
	}
	if err := f.policy.apply(def, changed); err != nil {
		return err
	}
	if err := f.scan.apply(def, changed); err != nil {
		return err
	}
	if changed("chunk-size") {
		n, err := parseSize(f.chunkSize)
		if err != nil || n <= 0 {
			return usageError{fmt.Errorf("--chunk-size %q: want a size such as 1MiB", f.chunkSize)}
		}
		def.ChunkSize = int(n)
	}
	if changed("compression") {
		return usageError{errors.New("--compression: a job cannot choose compression: it is the repository's (holdfast repo init --compression)")}
	}
	if changed("retries") || changed("retry-wait") {
		if f.retries < 0 || f.retryWait < 0 {
			return usageError{errors.New("--retries and --retry-wait must not be negative")}
		}
		def.Retries = jobdef.Retries{Count: f.retries, WaitSeconds: int(f.retryWait / time.Second)}
	}
	if err := f.applyGuest(def, changed); err != nil {
		return err
	}
	if changed("notify") {
		rules, err := parseNotify(f.notify)
		if err != nil {
			return err
		}
		def.Notify = rules
	}
	return f.applyData(def, changed)
}

// applyData sets the fields of the data path flags that changed.
func (f *jobFlags) applyData(def *jobdef.Definition, changed func(string) bool) error {
	if changed("read-limit") {
		n, err := throttle.ParseRate(f.readLimit)
		if err != nil || n <= 0 {
			return usageError{fmt.Errorf("--read-limit %q: want a rate such as 50MiB/s", f.readLimit)}
		}
		def.ReadLimit = n
	}
	if changed("throttle") {
		if _, err := throttle.ParseRules(strings.Join(f.throttle, "\n"), nil); err != nil {
			return usageError{fmt.Errorf("--throttle: %w", err)}
		}
		def.Throttle = f.throttle
	}
	if changed("format") {
		if err := applyFormats(def, f.formats); err != nil {
			return err
		}
	}
	if changed("follow-backing") {
		def.FollowBacking = f.followBacking
	}
	if changed("transport") {
		def.Transport = f.transport
	}
	if changed("exclude-free") {
		def.ExcludeFree = f.excludeFree
	}
	if changed("exclude-swap") {
		def.ExcludeSwap = f.excludeSwap
	}
	if changed("exclude") {
		if err := checkExcludePaths(f.excludePaths); err != nil {
			return err
		}
		def.ExcludePaths = f.excludePaths
	}
	return nil
}

// showJob prints one job as "field: value" lines.
func (a *app) showJob(j apitypes.Job) error {
	d, _ := jobdef.Parse(j.Definition)
	enabled := "no"
	if j.Enabled {
		enabled = "yes"
	}
	rows := [][]string{
		{"Name:", j.Name}, {"Kind:", orDash(j.Kind)}, {"Enabled:", enabled},
		{"Schedule:", orDash(j.Schedule)}, {"Repository:", orDash(d.Repository)}, {"VMs:", orDash(vmList(d))},
	}
	rows = append(rows, copyRows(d)...)
	for _, sel := range d.Select {
		rows = append(rows, []string{"Selects:", "VMs of " + sel.String()})
	}
	rows = append(rows, policyRows(d)...)
	rows = append(rows, scanAfterRows(d)...)
	rows = append(rows, notifyRows(d)...)
	if d.ChunkSize > 0 {
		rows = append(rows, []string{"Chunk size:", formatBytes(int64(d.ChunkSize))})
	}
	if d.Transport != "" {
		rows = append(rows, []string{"Transport:", d.Transport})
	}
	rows = append(rows, formatRows(d)...)
	if d.ExcludeFree || d.ExcludeSwap || len(d.ExcludePaths) > 0 {
		var ex []string
		if d.ExcludeFree {
			ex = append(ex, "free space")
		}
		if d.ExcludeSwap {
			ex = append(ex, "swap")
		}
		ex = append(ex, d.ExcludePaths...)
		rows = append(rows, []string{"Excludes:", strings.Join(ex, ", ")})
	}
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
		if d.GuestKeySecret != "" {
			key = "SSH key sealed on the server (" + d.GuestKeySecret + ")"
		}
		rows = append(rows, []string{"Guest:", fmt.Sprintf("%s; policy %s; timeout %ds; user %s; %s",
			strings.Join(scripts, ", "), orDash(g.Policy), g.TimeoutSeconds, orDash(g.User), key)})
	}
	pw := "none"
	if j.PasswordRef != "" {
		pw = "sealed on the server (" + j.PasswordRef + ")"
	}
	rows = append(rows, runRows(j)...)
	rows = append(rows, []string{"Password:", pw},
		[]string{"Created:", fmtTime(&j.Created)}, []string{"Updated:", fmtTime(&j.Updated)})
	return table(a.stdout, []string{"Job:", j.Name}, rows[1:])
}

// applyGuest sets the guest processing fields of the flags that changed.
func (f *jobFlags) applyGuest(def *jobdef.Definition, changed func(string) bool) error {
	g := &def.Guest
	scripts := []struct {
		flag, file string
		dst        *string
	}{{"pre-freeze", f.preFreeze, &g.PreFreeze}, {"post-thaw", f.postThaw, &g.PostThaw}}
	for _, sc := range scripts {
		if !changed(sc.flag) {
			continue
		}
		*sc.dst = ""
		if sc.file != "" {
			b, err := os.ReadFile(sc.file)
			if err != nil {
				return fmt.Errorf("--%s: %w", sc.flag, err)
			}
			*sc.dst = string(b)
		}
	}
	if changed("guest-timeout") {
		if f.guestTimeout < time.Second {
			return usageError{errors.New("--guest-timeout must be at least 1s")}
		}
		g.TimeoutSeconds = int(f.guestTimeout / time.Second)
	}
	if changed("guest-policy") {
		if f.guestPolicy != "fail" && f.guestPolicy != "warn" {
			return usageError{fmt.Errorf("--guest-policy %q: want fail or warn", f.guestPolicy)}
		}
		g.Policy = f.guestPolicy
	}
	if changed("guest-user") {
		g.User = f.guestUser
	}
	if changed("guest-key") {
		b, err := os.ReadFile(f.guestKey)
		if err != nil {
			return fmt.Errorf("--guest-key: %w", err)
		}
		def.GuestSSHKey = string(b) // the server seals it
	}
	perVM := []struct {
		flag  string
		specs []string
		field func(*jobdef.VM) *string
	}{{"guest-ssh", f.guestSSH, func(v *jobdef.VM) *string { return &v.GuestSSH }},
		{"guest-host-key", f.guestHostKey, func(v *jobdef.VM) *string { return &v.GuestHostKey }},
		{"guest-agent", f.guestAgent, func(v *jobdef.VM) *string { return &v.GuestAgent }}}
	for _, pv := range perVM {
		if !changed(pv.flag) {
			continue
		}
		if err := setVMField(def, pv.flag, pv.specs, pv.field); err != nil {
			return err
		}
	}
	return nil
}

// setVMField sets a field of the VMs named in specs (VM=VALUE).
func setVMField(def *jobdef.Definition, flag string, specs []string, field func(*jobdef.VM) *string) error {
	for _, spec := range specs {
		name, value, ok := strings.Cut(spec, "=")
		if !ok || name == "" || value == "" {
			return usageError{fmt.Errorf("--%s %q: want VM=VALUE", flag, spec)}
		}
		found := false
		for i := range def.VMs {
			if def.VMs[i].Name == name {
				*field(&def.VMs[i]), found = value, true
			}
		}
		if !found {
			return usageError{fmt.Errorf("--%s: the job has no VM %q", flag, name)}
		}
	}
	return nil
}

// checkExcludePaths refuses --exclude paths that name no file (usage).
func checkExcludePaths(paths []string) error {
	for _, p := range paths {
		if err := fsmap.ValidatePath(p); err != nil {
			return usageError{fmt.Errorf("--exclude: %w", err)}
		}
	}
	return nil
}
