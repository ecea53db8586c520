package vsphere

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// InventoryVM is a VM of the inventory as a selection sees it.
type InventoryVM struct {
	// Name is the VM's name; Path its inventory path
	// ("/DC0/vm/prod/web1", names escaped as vSphere escapes them).
	Name string
	Path string
	// Ref is its managed object reference (tags name VMs by it).
	Ref types.ManagedObjectReference
}

// Selector picks VMs of the inventory: all its set fields apply.
type Selector struct {
	// Pattern is a shell glob on the VM name ("": any).
	Pattern string
	// Folder is an inventory folder: its VMs and those of its subfolders
	// ("": anywhere).
	Folder string
	// Tag is a vSphere tag, "NAME" (in any category) or "CATEGORY/NAME"
	// ("": no tag needed).
	Tag string
}

// Match reports whether the selector picks vm; tagged holds the
// references (values) of the VMs that carry the selector's tag.
func (s Selector) Match(vm InventoryVM, tagged map[string]bool) (bool, error) {
	if s.Pattern != "" {
		ok, err := path.Match(s.Pattern, vm.Name)
		if err != nil {
			return false, fmt.Errorf("pattern %q: %w", s.Pattern, err)
		}
		if !ok {
			return false, nil
		}
	}
	if s.Folder != "" && !strings.HasPrefix(vm.Path, strings.TrimSuffix(s.Folder, "/")+"/") {
		return false, nil
	}
	if s.Tag != "" && !tagged[vm.Ref.Value] {
		return false, nil
	}
	return true, nil
}

// URL is the vsphere:// backup source of the VM at loc's user and host.
func (vm InventoryVM) URL(loc Locator) string {
	parts := strings.Split(strings.TrimPrefix(vm.Path, "/"), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "vsphere://" + url.PathEscape(loc.User) + "@" + loc.Host + "/" + strings.Join(parts, "/")
}

// Selected is what one selector picked.
type Selected struct {
	VMs []InventoryVM
	// Note says why a selector picked nothing when the inventory can
	// tell ("no tag named gold").
	Note string
}

// SelectVMs logs in to loc's endpoint and returns, per selector, the VMs
// it picks (templates are never picked), sorted by inventory path. Tags
// are read through the vAPI (vapi/tags) with the same credentials.
func SelectVMs(ctx context.Context, loc Locator, o ConnectOptions, sels []Selector) ([]Selected, error) {
	c, err := Connect(ctx, loc, o)
	if err != nil {
		return nil, err
	}
	defer c.Logout(context.WithoutCancel(ctx))
	vms, err := ListVMs(ctx, c)
	if err != nil {
		return nil, err
	}
	var tm *tags.Manager
	out := make([]Selected, len(sels))
	for i, s := range sels {
		var tagged map[string]bool
		if s.Tag != "" {
			if tm == nil {
				rc := rest.NewClient(c.Client)
				if err := rc.Login(ctx, url.UserPassword(loc.User, o.Password)); err != nil {
					return nil, fmt.Errorf("vSphere %s: log in to the vAPI for tags: %w", loc.Host, err)
				}
				defer func() { _ = rc.Logout(context.WithoutCancel(ctx)) }()
				tm = tags.NewManager(rc)
			}
			if tagged, err = taggedVMs(ctx, tm, s.Tag); err != nil {
				return nil, fmt.Errorf("vSphere %s: tag %q: %w", loc.Host, s.Tag, err)
			}
			if tagged == nil {
				out[i].Note = "no tag " + s.Tag + " exists"
			}
		}
		for _, vm := range vms {
			ok, err := s.Match(vm, tagged)
			if err != nil {
				return nil, err
			}
			if ok {
				out[i].VMs = append(out[i].VMs, vm)
			}
		}
	}
	return out, nil
}

// ListVMs lists every VM of the inventory (not templates), sorted by
// inventory path.
func ListVMs(ctx context.Context, c *Client) ([]InventoryVM, error) {
	f := find.NewFinder(c.Client, false)
	list, err := f.VirtualMachineList(ctx, "/...")
	if err != nil {
		if _, ok := err.(*find.NotFoundError); ok {
			return nil, nil
		}
		return nil, fmt.Errorf("list the VMs of %s: %w", c.Locator.Host, err)
	}
	refs := make([]types.ManagedObjectReference, len(list))
	for i, vm := range list {
		refs[i] = vm.Reference()
	}
	var props []mo.VirtualMachine
	if len(refs) > 0 {
		if err := property.DefaultCollector(c.Client).Retrieve(ctx, refs, []string{"name", "config.template"}, &props); err != nil {
			return nil, fmt.Errorf("list the VMs of %s: %w", c.Locator.Host, err)
		}
	}
	template := map[string]bool{}
	for _, p := range props {
		template[p.Self.Value] = p.Config != nil && p.Config.Template
	}
	var out []InventoryVM
	for _, vm := range list {
		if template[vm.Reference().Value] {
			continue
		}
		out = append(out, InventoryVM{Name: vm.Name(), Path: vm.InventoryPath, Ref: vm.Reference()})
	}
	slices.SortFunc(out, func(a, b InventoryVM) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// taggedVMs returns the references of the VMs carrying the tag "NAME" (in
// any category) or "CATEGORY/NAME"; nil when no such tag exists (the
// caller says so, so that a typing mistake does not pass for an empty
// selection).
func taggedVMs(ctx context.Context, tm *tags.Manager, tag string) (map[string]bool, error) {
	cat, name, hasCat := strings.Cut(tag, "/")
	if !hasCat {
		cat, name = "", tag
	}
	all, err := tm.GetTags(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range all {
		if t.Name != name {
			continue
		}
		if cat != "" {
			c, err := tm.GetCategory(ctx, t.CategoryID)
			if err != nil {
				return nil, err
			}
			if c.Name != cat {
				continue
			}
		}
		ids = append(ids, t.ID)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := map[string]bool{}
	for _, id := range ids {
		refs, err := tm.ListAttachedObjects(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if r.Reference().Type == "VirtualMachine" {
				out[r.Reference().Value] = true
			}
		}
	}
	return out, nil
}
