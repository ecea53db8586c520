package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/libvirtsrc"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/server/vspheresrc"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

// A job may select VMs from a source instead of (or besides) listing them:
//
//	"select": [{"source": "images1", "pattern": "web-*"},
//	           {"source": "vc1", "folder": "/DC0/vm/prod"}, {"source": "vc1", "tag": "tier/gold"}]
//
// The server resolves the selection when a session starts, so VMs added to
// the source later are picked up and VMs removed are simply not backed up:
//
//   - an image source (address: a directory the server and the proxies
//     see) yields one VM per image file — NAME.img, NAME.raw, NAME.qcow2,
//     NAME.vmdk — or, for files NAME-diskN.EXT, one VM NAME with those disks
//     in N order;
//   - an NBD source (address: nbd://host:port) yields one VM per export the
//     server lists (NBD_OPT_LIST), named after the export;
//   - a vSphere source (vspheresrc) yields the VMs of its inventory the
//     selection picks by name glob, folder and tag (vsphere.SelectVMs: one
//     login per source and session), each a whole VM named by its vSphere
//     name; its tasks carry the source's login (taskproto.VSphere).
//   - a libvirt source (libvirtsrc) yields the domains of its daemon the
//     selection picks by name glob and Holdfast metadata
//     (selection_libvirt.go), each a whole VM libvirt:///DOMAIN; its tasks
//     carry the source's connection URI and run on its proxy.
//
// pattern is a shell glob on the VM name ("" or "*": all). VMs listed
// explicitly win over selected ones of the same name. A selection that
// picks nothing, and a second vSphere VM of a name already selected (point
// names are VM names), are warnings of the session. A selected name that
// is no valid VM name fails that VM alone (prepareVM).

// imageExts are the image file types an image source offers.
var imageExts = map[string]bool{".img": true, ".raw": true, ".qcow2": true, ".vmdk": true}

// diskSuffix matches NAME-diskN.
var diskSuffix = regexp.MustCompile(`^(.+)-disk([0-9]+)$`)

// selection is what resolving a job's selection found besides its VMs.
type selection struct {
	warnings []string
	// logins are the vSphere logins of the VMs selected from vSphere
	// sources, by VM name.
	logins map[string]*taskproto.VSphere
	// libvirt are the sources of the VMs selected from libvirt sources,
	// by VM name.
	libvirt map[string]*libvirtsrc.Definition
}

// resolveSelection adds the selected VMs to def.VMs.
func (or *Orchestrator) resolveSelection(ctx context.Context, def *jobdef.Definition) (selection, error) {
	out := selection{logins: map[string]*taskproto.VSphere{}, libvirt: map[string]*libvirtsrc.Definition{}}
	have := map[string]string{} // VM name → what it was selected as (selectedVM.ident; "" listed)
	for _, vm := range def.VMs {
		have[vm.Name] = ""
	}
	picked, err := or.pickVSphere(ctx, def.Select)
	if err != nil {
		return out, err
	}
	domains, err := or.pickLibvirt(ctx, def.Select)
	if err != nil {
		return out, err
	}
	maps.Copy(picked, domains)
	for i, sel := range def.Select {
		p, ok := picked[i]
		vms := p.vms
		if !ok {
			listed, err := or.listSelection(ctx, sel)
			if err != nil {
				return out, fmt.Errorf("selection from source %q: %w", sel.Source, err)
			}
			for _, vm := range listed {
				vms = append(vms, selectedVM{vm: vm})
			}
		}
		if len(vms) == 0 {
			out.warnings = append(out.warnings, fmt.Sprintf("selection %s picks no VM%s", sel, p.note))
		}
		for _, s := range vms {
			vm := s.vm
			from, dup := have[vm.Name]
			switch {
			case !dup:
				have[vm.Name] = s.ident()
				def.VMs = append(def.VMs, vm)
				if s.login != nil {
					out.logins[vm.Name] = s.login
				}
				if s.libvirt != nil {
					out.libvirt[vm.Name] = s.libvirt
				}
			case from != "" && from != s.ident():
				out.warnings = append(out.warnings, fmt.Sprintf("VM %s of selection %s not backed up: %s, selected before, has its name",
					s.ident(), sel, from))
			}
		}
	}
	return out, nil
}

// selectedVM is a VM a selection picked, with the login its tasks carry
// (vSphere) or the source it is a domain of (libvirt).
type selectedVM struct {
	vm      jobdef.VM
	login   *taskproto.VSphere
	libvirt *libvirtsrc.Definition
}

// ident names the VM's origin, redacted: its first disk, and for a domain
// the daemon too (two daemons may hold a domain of one name).
func (s selectedVM) ident() string {
	id := source.Redact(s.vm.Disks[0])
	if s.libvirt != nil {
		id += " on " + libvirtconn.Redact(s.libvirt.Address)
	}
	return id
}

// picked is what one vSphere selection picked; note says why it picked
// nothing when the inventory tells (" (no tag gold exists)").
type picked struct {
	vms  []selectedVM
	note string
}

// listSelection lists the VMs of an image or NBD source that sel picks.
func (or *Orchestrator) listSelection(ctx context.Context, sel jobdef.Selection) ([]jobdef.VM, error) {
	src, err := or.store.GetSource(ctx, sel.Source)
	if err != nil {
		return nil, err
	}
	if sel.VSphereOnly() {
		return nil, fmt.Errorf("folder and tag select the VMs of a vSphere source, not of a %s source", src.Kind)
	}
	if sel.LibvirtOnly() {
		return nil, fmt.Errorf("metadata selects the domains of a libvirt source, not of a %s source", src.Kind)
	}
	var addr struct {
		Address string `json:"address"`
	}
	_ = json.Unmarshal(src.Definition, &addr)
	var vms []jobdef.VM
	switch src.Kind {
	case "image":
		vms, err = imageVMs(addr.Address)
	case "nbd":
		vms, err = nbdVMs(ctx, addr.Address)
	default:
		err = fmt.Errorf("selecting VMs from a %s source is not supported yet", src.Kind)
	}
	if err != nil {
		return nil, err
	}
	var out []jobdef.VM
	for _, vm := range vms {
		ok, err := path.Match(orStar(sel.Pattern), vm.Name)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", sel.Pattern, err)
		}
		if ok {
			out = append(out, vm)
		}
	}
	return out, nil
}

// pickVSphere resolves the selections from vSphere sources, one login per
// source: the VMs each picks, by selection index.
func (or *Orchestrator) pickVSphere(ctx context.Context, sels []jobdef.Selection) (map[int]picked, error) {
	bySource := map[string][]int{}
	var order []string
	for i, sel := range sels {
		if _, ok := bySource[sel.Source]; !ok {
			order = append(order, sel.Source)
		}
		bySource[sel.Source] = append(bySource[sel.Source], i)
	}
	out := map[int]picked{}
	for _, name := range order {
		src, err := or.store.GetSource(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("selection from source %q: %w", name, err)
		}
		if src.Kind != vspheresrc.Kind {
			continue
		}
		idx := bySource[name]
		got, login, err := or.selectVSphere(ctx, src, sels, idx)
		if err != nil {
			return nil, fmt.Errorf("selection from vSphere source %q: %w", name, err)
		}
		for j, i := range idx {
			var p picked
			for _, vm := range got[j].VMs {
				p.vms = append(p.vms, selectedVM{vm: jobdef.VM{Name: vm.Name, Disks: []string{vm.URL(login.loc)}}, login: login.task})
			}
			if got[j].Note != "" {
				p.note = " (" + got[j].Note + ")"
			}
			out[i] = p
		}
	}
	return out, nil
}

// vsphereLogin is a vSphere source's endpoint and login for one session.
type vsphereLogin struct {
	loc  vsphere.Locator
	task *taskproto.VSphere
}

// selectVSphere logs in to a vSphere source (its password read from its
// file now) and returns what each selection of idx picks.
func (or *Orchestrator) selectVSphere(ctx context.Context, src configdb.Source, sels []jobdef.Selection, idx []int) ([]vsphere.Selected, vsphereLogin, error) {
	def, login, err := or.vsphereLogin(src)
	if err != nil {
		return nil, vsphereLogin{}, err
	}
	opts, err := login.ConnectOptions()
	if err != nil {
		return nil, vsphereLogin{}, err
	}
	selectors := make([]vsphere.Selector, len(idx))
	for j, i := range idx {
		if sels[i].LibvirtOnly() {
			return nil, vsphereLogin{}, fmt.Errorf("selection %s: metadata selects the domains of a libvirt source, not of a vSphere source", sels[i])
		}
		selectors[j] = vsphere.Selector{Pattern: sels[i].Pattern, Folder: sels[i].Folder, Tag: sels[i].Tag}
	}
	got, err := vsphere.SelectVMs(ctx, def.Locator(), opts, selectors)
	if err != nil {
		return nil, vsphereLogin{}, err
	}
	return got, vsphereLogin{loc: def.Locator(), task: login}, nil
}

// vsphereLogin reads a vSphere source's definition and password file.
func (or *Orchestrator) vsphereLogin(src configdb.Source) (vspheresrc.Definition, *taskproto.VSphere, error) {
	def, err := vspheresrc.Parse(src.Definition)
	if err != nil {
		return def, nil, err
	}
	warnings, err := def.CheckPasswordFile()
	if err != nil {
		return def, nil, err
	}
	for _, w := range warnings {
		or.log.Warn("vSphere source", "source", src.Name, "warning", w)
	}
	login, err := def.Login()
	return def, login, err
}

func orStar(p string) string {
	if p == "" {
		return "*"
	}
	return p
}

// imageVMs lists the VMs of an image directory.
func imageVMs(dir string) ([]jobdef.VM, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("image source address %q is not an absolute directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type disk struct {
		n    int
		path string
	}
	byVM := map[string][]disk{}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || !imageExts[strings.ToLower(ext)] {
			continue
		}
		base := strings.TrimSuffix(e.Name(), ext)
		name, n := base, 0
		if m := diskSuffix.FindStringSubmatch(base); m != nil {
			name = m[1]
			_, _ = fmt.Sscan(m[2], &n)
		}
		byVM[name] = append(byVM[name], disk{n, filepath.Join(dir, e.Name())})
	}
	var vms []jobdef.VM
	for name, disks := range byVM {
		sort.Slice(disks, func(i, j int) bool { return disks[i].n < disks[j].n })
		vm := jobdef.VM{Name: name}
		for _, d := range disks {
			vm.Disks = append(vm.Disks, d.path)
		}
		vms = append(vms, vm)
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	return vms, nil
}

// nbdVMs lists the exports of an NBD server, one VM each.
func nbdVMs(ctx context.Context, address string) ([]jobdef.VM, error) {
	spec, err := source.Parse(address)
	u, uerr := url.Parse(address)
	if err != nil || uerr != nil || spec.Kind != source.KindNBD || u.Host == "" {
		return nil, fmt.Errorf("NBD source address %s: want nbd://host:port", source.Redact(address))
	}
	exports, err := nbd.ListExports(ctx, address, nbd.ClientOptions{})
	if err != nil {
		return nil, err
	}
	var vms []jobdef.VM
	for _, e := range exports {
		if e.Name == "" {
			continue
		}
		vms = append(vms, jobdef.VM{Name: e.Name, Disks: []string{spec.Scheme + "://" + u.Host + "/" + url.PathEscape(e.Name)}})
	}
	return vms, nil
}

// listedVSphereLogin returns the login of a vsphere:// disk listed in a
// job (not selected): that of the vSphere source with the disk's user and
// endpoint.
func (or *Orchestrator) listedVSphereLogin(ctx context.Context, spec source.Spec) (*taskproto.VSphere, error) {
	want, err := vsphere.FromSpec(spec)
	if err != nil {
		return nil, err
	}
	srcs, err := or.store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	for _, src := range srcs {
		if src.Kind != vspheresrc.Kind {
			continue
		}
		d, err := vspheresrc.Parse(src.Definition)
		if err != nil {
			continue
		}
		if loc := d.Locator(); loc.User == want.User && strings.EqualFold(loc.Endpoint(), want.Endpoint()) {
			_, login, err := or.vsphereLogin(src)
			if err != nil {
				return nil, fmt.Errorf("vSphere source %q: %w", src.Name, err)
			}
			return login, nil
		}
	}
	return nil, fmt.Errorf("no vSphere source for %s@%s: add one (holdfast source add NAME --type vsphere --address vsphere://%s@%s --vsphere-password-file F)",
		want.User, want.Host, want.User, want.Host)
}
