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
//	{"source": "kvm1", "metadata": "tier=gold"}        libvirt domains whose Holdfast metadata says tier="gold"
//
// The fields of one entry all apply; the entries add up (a VM any entry
// selects is backed up once). folder and tag apply to vSphere sources
// only, metadata to libvirt sources only (docs/libvirt.md). On the command line one --vms-from SOURCE=SELECTOR gives one entry
// (ParseSelection).

// Selector kinds of ParseSelection.
const (
	selName   = "name:"
	selFolder = "folder:"
	selTag    = "tag:"
	selMeta   = "metadata:"
)

// ParseSelection reads SOURCE[=SELECTOR], the form of --vms-from, where
// SELECTOR is a glob on the VM name (optionally written name:GLOB),
// folder:/DATACENTER/vm/FOLDER/…, tag:[CATEGORY/]TAG or metadata:KEY=VALUE.
func ParseSelection(s string) (Selection, error) {
	src, sel, _ := strings.Cut(s, "=")
	out := Selection{Source: src}
	switch {
	case strings.HasPrefix(sel, selFolder):
		out.Folder = strings.TrimPrefix(sel, selFolder)
	case strings.HasPrefix(sel, selTag):
		out.Tag = strings.TrimPrefix(sel, selTag)
	case strings.HasPrefix(sel, selMeta):
		out.Metadata = strings.TrimPrefix(sel, selMeta)
	default:
		out.Pattern = strings.TrimPrefix(sel, selName)
	}
	if err := out.Check(); err != nil {
		return Selection{}, fmt.Errorf("%q: %w (want SOURCE[=GLOB], SOURCE=folder:/DC/vm/FOLDER, SOURCE=tag:[CATEGORY/]TAG or SOURCE=metadata:KEY=VALUE)", s, err)
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
	if s.Metadata != "" {
		parts = append(parts, selMeta+s.Metadata)
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
	if s.Metadata != "" {
		if _, _, err := s.MetadataPair(); err != nil {
			return err
		}
		if s.VSphereOnly() {
			return errors.New("metadata selects libvirt domains; folder and tag select vSphere VMs: not both")
		}
	}
	return nil
}

// MetadataPair splits Metadata into its key, an XML attribute name
// (letters, digits, '-', '_', '.'; not starting with a digit, '-' or '.'),
// and its value (any text, possibly empty).
func (s Selection) MetadataPair() (key, value string, err error) {
	key, value, ok := strings.Cut(s.Metadata, "=")
	if !ok || !isXMLName(key) {
		return "", "", fmt.Errorf("metadata %q: want KEY=VALUE, KEY an XML attribute name", s.Metadata)
	}
	return key, value, nil
}

// isXMLName reports whether k is a plain XML name (no namespace prefix).
func isXMLName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		letter := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '-' || r == '.')) {
			return false
		}
	}
	return true
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

// LibvirtOnly reports whether the selection uses what only a libvirt
// source offers (metadata).
func (s Selection) LibvirtOnly() bool { return s.Metadata != "" }
