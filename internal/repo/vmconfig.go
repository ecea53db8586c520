package repo

// VMConfig is a VM's hardware configuration as the source platform
// reported it at the restore point, recorded in the manifest so a restore
// can recreate the VM. Platform-neutral: a field a platform does not know
// stays empty.
type VMConfig struct {
	// Platform names where the VM ran: "vsphere", "qemu", "libvirt".
	Platform string `json:"platform"`
	// Name is the VM's name on the platform; UUID its instance UUID.
	Name string `json:"name,omitempty"`
	UUID string `json:"uuid,omitempty"`
	// GuestID is the platform's guest OS identifier (vSphere guestId).
	GuestID string `json:"guest_id,omitempty"`
	// Version is the virtual hardware version ("vmx-19").
	Version   string `json:"version,omitempty"`
	CPUs      int    `json:"cpus,omitempty"`
	MemoryMiB int64  `json:"memory_mib,omitempty"`
	// Firmware is "bios" or "efi".
	Firmware string `json:"firmware,omitempty"`
	// Disks are the VM's backed-up disks, in the point's disk order.
	Disks []VMDisk `json:"disks,omitempty"`
	// Skipped lists the disks that were not backed up, with why
	// (independent, RDM, CD-ROM).
	Skipped []string  `json:"skipped,omitempty"`
	NICs    []VMNIC   `json:"nics,omitempty"`
	Extra   []KeyPair `json:"extra,omitempty"`
	// DomainXML is a libvirt domain's XML as libvirt reported it at the
	// restore point (platform "libvirt"), to define the domain again.
	DomainXML string `json:"domain_xml,omitempty"`
}

// VMDisk is one disk of a VMConfig.
type VMDisk struct {
	// Index is the disk's number in the restore point.
	Index int `json:"index"`
	// Controller is the controller type and bus ("pvscsi 0", "lsilogic 0",
	// "nvme 0", "sata 0", "ide 0"); Unit the disk's unit number on it.
	Controller string `json:"controller"`
	Bus        int    `json:"bus"`
	Unit       int    `json:"unit"`
	// CapacityBytes is the disk's virtual size.
	CapacityBytes int64 `json:"capacity_bytes"`
	// Thin and Mode are the backing's provisioning and disk mode
	// ("persistent").
	Thin bool   `json:"thin,omitempty"`
	Mode string `json:"mode,omitempty"`
	// File is the disk's file on the platform ("[ds1] vm/vm.vmdk").
	File string `json:"file,omitempty"`
	// Datastore is the datastore holding File.
	Datastore string `json:"datastore,omitempty"`
}

// VMNIC is one network adapter of a VMConfig.
type VMNIC struct {
	// Model is the adapter type ("vmxnet3", "e1000e", "virtio-net").
	Model string `json:"model"`
	// Network is the name of the network or port group it connects to.
	Network string `json:"network,omitempty"`
	MAC     string `json:"mac,omitempty"`
}

// KeyPair is an extra configuration value worth keeping (vSphere
// extraConfig entries a restore carries over).
type KeyPair struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}
