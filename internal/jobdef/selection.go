package jobdef

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// A job selects VMs from a source with "select" entries, resolved each
// time a session starts:
//
//	{"source": "images1", "pattern": "web-*"}           names matching a glob
//	{"source": "vc1", "folder": "/DC0/vm/prod"}         every VM in the folder and its subfolders
//	{"source": "vc1", "tag": "backup/gold"}             VMs carrying the tag (CATEGORY/NAME or NAME)
//	{"source": "vc1", "folder": "/DC0/vm/prod", "pattern": "web*"}   both
//
// The fields of one entry all apply; the entries add up (a VM any entry
// selects is backed up once). folder and tag apply to vSphere sources
// only. On the command line one --vms-from SOURCE=SELECTOR gives one entry
// (ParseSelection).

// Selector kinds of ParseSelection.
const (
	selName   = "name:"
	selFolder = "folder:"
	selTag    = "tag:"
)

// ParseSelection reads SOURCE[=SELECTOR], the form of --vms-from, where
// SELECTOR is a glob on the VM name (optionally written name:GLOB),
// folder:/DATACENTER/vm/FOLDER/… or tag:[CATEGORY/]TAG.
func ParseSelection(s string) (Selection, error) {
	src, sel, _ := strings.Cut(s, "=")
	out := Selection{Source: src}
	switch {
	case strings.HasPrefix(sel, selFolder):
		out.Folder = strings.TrimPrefix(sel, selFolder)
	case strings.HasPrefix(sel, selTag):
		out.Tag = strings.TrimPrefix(sel, selTag)
	default:
		out.Pattern = strings.TrimPrefix(sel, selName)
	}
	if err := out.Check(); err != nil {
		return Selection{}, fmt.Errorf("%q: %w (want SOURCE[=GLOB], SOURCE=folder:/DC/vm/FOLDER or SOURCE=tag:[CATEGORY/]TAG)", s, err)
	}
	if sel != "" && out == (Selection{Source: src}) {
		return Selection{}, fmt.Errorf("%q: an empty selector (want SOURCE to select every VM)", s)
	}
	return out, nil
}

// String is the selection in ParseSelection's form (its fields joined by
// " and " when an entry has several).
func (s Selection) String() string {
	var parts []string
	if s.Pattern != "" {
		parts = append(parts, selName+s.Pattern)
	}
	if s.Folder != "" {
		parts = append(parts, selFolder+s.Folder)
	}
	if s.Tag != "" {
		parts = append(parts, selTag+s.Tag)
	}
	if len(parts) == 0 {
		return s.Source + " (every VM)"
	}
	return s.Source + "=" + strings.Join(parts, " and ")
}

// Check validates a selection: a source, a valid glob, an absolute clean
// inventory folder, a tag with at most one category.
func (s Selection) Check() error {
	if s.Source == "" {
		return errors.New("a VM selection without a source")
	}
	if _, err := path.Match(s.Pattern, ""); err != nil {
		return fmt.Errorf("pattern %q: %w", s.Pattern, err)
	}
	if s.Folder != "" {
		f := strings.TrimSuffix(s.Folder, "/")
		parts := strings.Split(strings.TrimPrefix(f, "/"), "/")
		if !strings.HasPrefix(f, "/") || len(parts) < 2 || parts[1] != "vm" || hasBadElem(parts) {
			return fmt.Errorf("folder %q: want an inventory path /DATACENTER/vm[/FOLDER/…]", s.Folder)
		}
	}
	if s.Tag != "" {
		cat, name, hasCat := strings.Cut(s.Tag, "/")
		if strings.TrimSpace(cat) == "" || hasCat && (strings.TrimSpace(name) == "" || strings.Contains(name, "/")) {
			return fmt.Errorf("tag %q: want NAME or CATEGORY/NAME", s.Tag)
		}
	}
	return nil
}

func hasBadElem(parts []string) bool {
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return true
		}
	}
	return false
}

// VSphereOnly reports whether the selection uses what only a vSphere
// source offers (folder, tag).
func (s Selection) VSphereOnly() bool { return s.Folder != "" || s.Tag != "" }
