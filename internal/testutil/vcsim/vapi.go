package vcsim

import (
	"context"
	"net/url"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vapi/rest"
	_ "github.com/vmware/govmomi/vapi/simulator" // the vAPI endpoints (tags) of the simulator
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/types"
)

// Tag attaches the vSphere tag CATEGORY/NAME (both created when missing)
// to the VMs at the inventory paths, through the simulator's vAPI.
func (s *Sim) Tag(t testing.TB, category, name string, vmPaths ...string) {
	t.Helper()
	ctx := context.Background()
	c := s.Connect(t)
	rc := rest.NewClient(c.Client)
	if err := rc.Login(ctx, url.UserPassword(User, Password)); err != nil {
		t.Fatalf("vcsim: vAPI login: %v", err)
	}
	defer func() { _ = rc.Logout(ctx) }()
	tm := tags.NewManager(rc)
	cat, err := tm.GetCategory(ctx, category)
	var catID string
	if err == nil {
		catID = cat.ID
	} else if catID, err = tm.CreateCategory(ctx, &tags.Category{Name: category, Cardinality: "MULTIPLE",
		AssociableTypes: []string{"VirtualMachine"}}); err != nil {
		t.Fatalf("vcsim: create category %s: %v", category, err)
	}
	tagID, err := tm.CreateTag(ctx, &tags.Tag{Name: name, CategoryID: catID})
	if err != nil {
		t.Fatalf("vcsim: create tag %s/%s: %v", category, name, err)
	}
	si := object.NewSearchIndex(c.Client)
	for _, p := range vmPaths {
		ref, err := si.FindByInventoryPath(ctx, p)
		if err != nil || ref == nil {
			t.Fatalf("vcsim: VM %s: %v", p, err)
		}
		if err := tm.AttachTag(ctx, tagID, ref); err != nil {
			t.Fatalf("vcsim: tag %s: %v", p, err)
		}
	}
}

// Move moves the VMs at the inventory paths into the folder at
// folderPath ("/DC0/vm/prod/inner"), creating the folders on the way.
func (s *Sim) Move(t testing.TB, folderPath string, vmPaths ...string) {
	t.Helper()
	ctx := context.Background()
	c := s.Connect(t)
	si := object.NewSearchIndex(c.Client)
	folder := s.folder(t, ctx, si, folderPath)
	for _, p := range vmPaths {
		ref, err := si.FindByInventoryPath(ctx, p)
		if err != nil || ref == nil {
			t.Fatalf("vcsim: VM %s: %v", p, err)
		}
		task, err := folder.MoveInto(ctx, []types.ManagedObjectReference{ref.Reference()})
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("vcsim: move %s into %s: %v", p, folderPath, err)
		}
	}
}

// folder returns the folder at p, creating it (and its parents below the
// datacenter's vm folder) when missing.
func (s *Sim) folder(t testing.TB, ctx context.Context, si *object.SearchIndex, p string) *object.Folder {
	t.Helper()
	ref, err := si.FindByInventoryPath(ctx, p)
	if err != nil {
		t.Fatalf("vcsim: folder %s: %v", p, err)
	}
	if ref != nil {
		f, ok := ref.(*object.Folder)
		if !ok {
			t.Fatalf("vcsim: %s is not a folder", p)
		}
		return f
	}
	i := len(p) - 1
	for i > 0 && p[i] != '/' {
		i--
	}
	parent := s.folder(t, ctx, si, p[:i])
	f, err := parent.CreateFolder(ctx, p[i+1:])
	if err != nil {
		t.Fatalf("vcsim: create folder %s: %v", p, err)
	}
	return f
}
