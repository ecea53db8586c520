package orchestrator

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/libvirtsrc"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// A libvirt source (libvirtsrc) yields its daemon's domains, running or
// shut off, that a selection picks by name glob (pattern) and Holdfast
// metadata (metadata: KEY=VALUE, an attribute of the domain's metadata
// element in libvirt.MetadataNamespace): each a whole VM named by its
// domain name, read on the proxy as libvirt:///DOMAIN through the source's
// connection URI (taskproto.Spec.LibvirtURI), on the source's proxy when
// it names one (pinnedKey). The server lists the domains itself, once per
// source and session, through the source's list URI.

// pickLibvirt resolves the selections from libvirt sources: the domains
// each picks, by selection index.
func (or *Orchestrator) pickLibvirt(ctx context.Context, sels []jobdef.Selection) (map[int]picked, error) {
	out := map[int]picked{}
	listed := map[string][]libvirt.Domain{}
	for i, sel := range sels {
		src, err := or.store.GetSource(ctx, sel.Source)
		if err != nil {
			return nil, fmt.Errorf("selection from source %q: %w", sel.Source, err)
		}
		if src.Kind != libvirtsrc.Kind {
			if sel.LibvirtOnly() {
				return nil, fmt.Errorf("selection %s: metadata selects the domains of a libvirt source, not of a %s source", sel, src.Kind)
			}
			continue
		}
		p, err := pickDomains(ctx, src, sel, listed)
		if err != nil {
			return nil, fmt.Errorf("selection from libvirt source %q: %w", sel.Source, err)
		}
		out[i] = p
	}
	return out, nil
}

// pickDomains lists the source's domains (once per session: listed keeps
// them by source) and returns those sel picks.
func pickDomains(ctx context.Context, src configdb.Source, sel jobdef.Selection, listed map[string][]libvirt.Domain) (picked, error) {
	def, err := libvirtsrc.Parse(src.Definition)
	if err != nil {
		return picked{}, err
	}
	if sel.VSphereOnly() {
		return picked{}, fmt.Errorf("folder and tag select the VMs of a vSphere source, not of a libvirt source")
	}
	doms, ok := listed[src.Name]
	if !ok {
		if doms, err = libvirt.ListDomains(ctx, def.ListURI()); err != nil {
			return picked{}, err
		}
		listed[src.Name] = doms
	}
	names, err := matchDomains(doms, sel)
	if err != nil {
		return picked{}, err
	}
	var p picked
	for _, name := range names {
		p.vms = append(p.vms, selectedVM{vm: jobdef.VM{Name: name, Disks: []string{domainSource(name)}}, libvirt: &def})
	}
	if len(names) == 0 {
		p.note = fmt.Sprintf(" (the daemon lists %d domains)", len(doms))
	}
	return p, nil
}

// matchDomains returns the names of the domains sel picks: the name
// matches its pattern ("" every name) and, when it has one, its metadata
// KEY=VALUE is an attribute of the domain's Holdfast metadata.
func matchDomains(doms []libvirt.Domain, sel jobdef.Selection) ([]string, error) {
	var key, value string
	if sel.Metadata != "" {
		var err error
		if key, value, err = sel.MetadataPair(); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, d := range doms {
		ok, err := path.Match(orStar(sel.Pattern), d.Name)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", sel.Pattern, err)
		}
		if !ok {
			continue
		}
		if v, has := d.Metadata[key]; key != "" && (!has || v != value) {
			continue
		}
		out = append(out, d.Name)
	}
	return out, nil
}

// domainSource is the source URL of a domain of a libvirt source (its
// daemon travels beside it, in the task's LibvirtURI).
func domainSource(name string) string { return "libvirt:///" + url.PathEscape(name) }

// pinnedPrefix starts the scheduler's source key of a task only one proxy
// may run: "proxy:NAME/" followed by the source's own key.
const pinnedPrefix = "proxy:"

// reachKey is the scheduler's source key of the task: its source's key,
// pinned to the proxy of the libvirt source that selected its VM.
func (tr *taskRun) reachKey() string {
	if tr.vm != nil && tr.vm.libvirt != nil && tr.vm.libvirt.Proxy != "" {
		lv := tr.vm.libvirt
		return pinnedPrefix + lv.Proxy + "/" + tr.spec.ReachKey()
	}
	return tr.spec.ReachKey()
}

// pinReach adds the pinned source keys among sources to the reach of
// proxy: those pinned to it with every transport it offers, whatever its
// --reach says (the operator named it), the others listed without
// transports, so no other proxy runs them.
func pinReach(m map[string][]source.Transport, proxy string, caps proxyCaps, sources []string) {
	for _, s := range sources {
		rest, ok := strings.CutPrefix(s, pinnedPrefix)
		if !ok {
			continue
		}
		m[s] = nil
		if name, _, _ := strings.Cut(rest, "/"); name == proxy {
			m[s] = caps.Transports
		}
	}
}
