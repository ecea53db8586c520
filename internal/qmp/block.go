package qmp

import "context"

// BlockDevice is one entry of query-block: a block backend, usually a guest
// device, and the node inserted in it.
type BlockDevice struct {
	// Device is the backend name; empty for devices created with
	// -blockdev/-device, which are named by QDev instead.
	Device string `json:"device"`
	// QDev is the device's QOM path or id, e.g.
	// "/machine/peripheral/vda/virtio-backend".
	QDev      string     `json:"qdev"`
	Removable bool       `json:"removable"`
	Inserted  *BlockNode `json:"inserted"` // nil for an empty drive
}

// NodeName returns the node name of the inserted medium, "" when empty.
func (d BlockDevice) NodeName() string {
	if d.Inserted == nil {
		return ""
	}
	return d.Inserted.NodeName
}

// BlockNode describes a block node (QMP BlockDeviceInfo), as returned by
// query-named-block-nodes and in query-block's "inserted".
type BlockNode struct {
	NodeName     string        `json:"node-name"`
	File         string        `json:"file"` // filename or JSON description
	Driver       string        `json:"drv"`  // "qcow2", "raw", "file", ...
	ReadOnly     bool          `json:"ro"`
	BackingFile  string        `json:"backing_file"`
	Image        ImageInfo     `json:"image"`
	DirtyBitmaps []DirtyBitmap `json:"dirty-bitmaps"`
}

// ImageInfo is the image part of a block node.
type ImageInfo struct {
	Filename        string     `json:"filename"`
	Format          string     `json:"format"`
	VirtualSize     int64      `json:"virtual-size"`
	ActualSize      int64      `json:"actual-size"`
	ClusterSize     int64      `json:"cluster-size"`
	DirtyFlag       bool       `json:"dirty-flag"`
	BackingFilename string     `json:"backing-filename"`
	BackingImage    *ImageInfo `json:"backing-image"`
}

// DirtyBitmap is a dirty bitmap of a block node.
type DirtyBitmap struct {
	Name         string `json:"name"`
	Count        int64  `json:"count"` // dirty bytes
	Granularity  int64  `json:"granularity"`
	Recording    bool   `json:"recording"`
	Busy         bool   `json:"busy"`
	Persistent   bool   `json:"persistent"`
	Inconsistent bool   `json:"inconsistent"`
}

// QueryBlock lists the block backends (guest drives) of a VM. The storage
// daemon has no guest devices: use QueryNamedBlockNodes there.
func (c *Client) QueryBlock(ctx context.Context) ([]BlockDevice, error) {
	var devs []BlockDevice
	err := c.Execute(ctx, "query-block", nil, &devs)
	return devs, err
}

// QueryNamedBlockNodes lists the block nodes with a node name; flat=true
// omits the backing chain of each image (much shorter replies).
func (c *Client) QueryNamedBlockNodes(ctx context.Context, flat bool) ([]BlockNode, error) {
	var nodes []BlockNode
	err := c.Execute(ctx, "query-named-block-nodes", map[string]bool{"flat": flat}, &nodes)
	return nodes, err
}

// BlockJob is one entry of query-block-jobs.
type BlockJob struct {
	Type         string `json:"type"`   // "backup", "mirror", ...
	Device       string `json:"device"` // the job id
	Len          int64  `json:"len"`
	Offset       int64  `json:"offset"`
	Busy         bool   `json:"busy"`
	Paused       bool   `json:"paused"`
	Ready        bool   `json:"ready"`
	Speed        int64  `json:"speed"`
	IOStatus     string `json:"io-status"`
	Status       string `json:"status"` // JobStatus: "running", "concluded", ...
	AutoFinalize bool   `json:"auto-finalize"`
	AutoDismiss  bool   `json:"auto-dismiss"`
	Error        string `json:"error"`
}

// BlockJobs lists the running block jobs (query-block-jobs).
func (c *Client) BlockJobs(ctx context.Context) ([]BlockJob, error) {
	var jobs []BlockJob
	err := c.Execute(ctx, "query-block-jobs", nil, &jobs)
	return jobs, err
}
