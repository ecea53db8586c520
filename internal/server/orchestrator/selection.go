package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/nbd"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// A job may select VMs from a source instead of (or besides) listing them:
//
//	"select": [{"source": "images1", "pattern": "web-*"}]
//
// The server resolves the selection when a session starts, so VMs added to
// the source later are picked up:
//
//   - an image source (address: a directory the server and the proxies
//     see) yields one VM per image file — NAME.img, NAME.raw, NAME.qcow2,
//     NAME.vmdk — or, for files NAME-diskN.EXT, one VM NAME with those disks
//     in N order;
//   - an NBD source (address: nbd://host:port) yields one VM per export the
//     server lists (NBD_OPT_LIST), named after the export.
//
// pattern is a shell glob on the VM name ("" or "*": all). VMs listed
// explicitly win over selected ones of the same name.

// imageExts are the image file types an image source offers.
var imageExts = map[string]bool{".img": true, ".raw": true, ".qcow2": true, ".vmdk": true}

// diskSuffix matches NAME-diskN.
var diskSuffix = regexp.MustCompile(`^(.+)-disk([0-9]+)$`)

// resolveSelection adds the selected VMs to def.VMs.
func (or *Orchestrator) resolveSelection(ctx context.Context, def *jobdef.Definition) error {
	have := map[string]bool{}
	for _, vm := range def.VMs {
		have[vm.Name] = true
	}
	for _, sel := range def.Select {
		src, err := or.store.GetSource(ctx, sel.Source)
		if err != nil {
			return fmt.Errorf("selection from source %q: %w", sel.Source, err)
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
			return fmt.Errorf("selection from source %q: %w", sel.Source, err)
		}
		for _, vm := range vms {
			ok, err := path.Match(orStar(sel.Pattern), vm.Name)
			if err != nil {
				return fmt.Errorf("selection from source %q: pattern %q: %w", sel.Source, sel.Pattern, err)
			}
			if ok && !have[vm.Name] {
				have[vm.Name] = true
				def.VMs = append(def.VMs, vm)
			}
		}
	}
	return nil
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
