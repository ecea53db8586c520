package publish

import "testing"

func TestMountOptionsTypes(t *testing.T) {
	for fstype, want := range map[string]string{
		"ext4":  "ro,nodev,nosuid,noexec,noload",
		"xfs":   "ro,nodev,nosuid,noexec,norecovery,nouuid",
		"btrfs": "ro,nodev,nosuid,noexec,rescue=nologreplay",
		"vfat":  "ro,nodev,nosuid,noexec,umask=077", // the EFI system partition
		"swap":  "",
		"ntfs":  "",
	} {
		got, ok := MountOptions(fstype)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", fstype, got, ok, want)
		}
	}
}
