package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/spf13/cobra"
)

func newVSphereCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "vsphere",
		Short: "Look at a vCenter or ESXi inventory",
		Args:  noArgs,
	}
	c.AddCommand(newVSphereLsCommand(a))
	return c
}

func newVSphereLsCommand(a *app) *cobra.Command {
	var asJSON bool
	var vf vsphereFlags
	c := &cobra.Command{
		Use:   "ls vsphere://USER@HOST[:PORT][/DC[/…]]",
		Short: "List datacenters, hosts, datastores and VMs with their disks and CBT state",
		Long: `List what a vCenter or ESXi host holds below an inventory path: every
datacenter (no path), one datacenter (/DC), or the VMs at or below a path
(/DC/vm/FOLDER, /DC/vm/FOLDER/VM) with the datacenter's hosts and datastores.
VMs are shown with their disks (file, capacity, controller and unit, disk
mode: independent disks and RDMs are not backed up) and whether changed block
tracking is on. The password comes from --vsphere-password-file or
$HOLDFAST_VSPHERE_PASSWORD.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			loc, err := vsphere.ParseURL(args[0])
			if err != nil {
				return usageError{err}
			}
			co, err := vf.connectOptions(a)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cl, err := vsphere.Connect(ctx, loc, co)
			if err != nil {
				return err
			}
			defer cl.Logout(ctx)
			inv, err := vsphere.List(ctx, cl, loc.Path)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(inv)
			}
			return printInventory(a, inv)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	vf.register(c.Flags())
	return c
}

// printInventory prints one table per kind of object.
func printInventory(a *app, inv *vsphere.Inventory) error {
	var hosts, stores, vms, disks [][]string
	for _, dc := range inv.Datacenters {
		for _, h := range dc.Hosts {
			hosts = append(hosts, []string{dc.Name, h.Name, h.Connection, h.Power})
		}
		for _, d := range dc.Datastores {
			stores = append(stores, []string{dc.Name, d.Name, d.Type, formatBytes(d.Capacity), formatBytes(d.Free)})
		}
		for _, v := range dc.VMs {
			vms = append(vms, []string{v.Path, v.Power, v.CBT, strconv.Itoa(len(v.Disks)), strconv.Itoa(v.Snapshots)})
			for i, d := range v.Disks {
				note := d.Skipped
				if note == "" {
					note = "backed up"
				}
				disks = append(disks, []string{v.Path, strconv.Itoa(i), d.File, formatBytes(d.Capacity),
					d.Controller + ":" + strconv.Itoa(d.Unit), d.Mode, note})
			}
		}
	}
	dcs := make([][]string, 0, len(inv.Datacenters))
	for _, dc := range inv.Datacenters {
		dcs = append(dcs, []string{dc.Path, strconv.Itoa(len(dc.Hosts)), strconv.Itoa(len(dc.Datastores)), strconv.Itoa(len(dc.VMs))})
	}
	sections := []struct {
		header []string
		rows   [][]string
	}{
		{[]string{"DATACENTER", "HOSTS", "DATASTORES", "VMS"}, dcs},
		{[]string{"DATACENTER", "HOST", "CONNECTION", "POWER"}, hosts},
		{[]string{"DATACENTER", "DATASTORE", "TYPE", "CAPACITY", "FREE"}, stores},
		{[]string{"VM", "POWER", "CBT", "DISKS", "SNAPSHOTS"}, vms},
		{[]string{"VM", "DISK", "FILE", "CAPACITY", "CONTROLLER:UNIT", "MODE", "BACKUP"}, disks},
	}
	for i, s := range sections {
		if len(s.rows) == 0 {
			continue
		}
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		if err := table(a.stdout, s.header, s.rows); err != nil {
			return err
		}
	}
	return nil
}
