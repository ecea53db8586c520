package main

import (
	"encoding/json"
	"net/url"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
)

func newPointCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "point", Short: "Restore points known to the server", Args: noArgs}
	addClientFlags(c, o)
	var asJSON bool
	var vm, job, repository string
	var limit int
	l := &cobra.Command{Use: "list", Short: "List restore points the server's jobs made, newest first", Args: noArgs}
	l.Flags().BoolVar(&asJSON, "json", false, "print as JSON (the same fields as holdfast points --json)")
	l.Flags().StringVar(&vm, "vm", "", "only points of this VM")
	l.Flags().StringVar(&job, "job", "", "only points made by this job")
	l.Flags().StringVar(&repository, "repository", "", "only points in this repository")
	l.Flags().IntVar(&limit, "limit", 0, "at most this many points (default 100)")
	l.RunE = func(cmd *cobra.Command, _ []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range map[string]string{"vm": vm, "job": job, "repository": repository} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if limit > 0 {
			q.Set("limit", strconv.Itoa(limit))
		}
		path := "/api/v1/points"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		var ps []apitypes.Point
		if err := cl.call(cmd.Context(), "GET", path, "list points", nil, &ps); err != nil {
			return err
		}
		return writePoints(a, ps, asJSON)
	}
	c.AddCommand(l)
	return c
}

// diskCount is the number of disks of a point (its disks array's length).
func diskCount(p apitypes.Point) int {
	var disks []json.RawMessage
	_ = json.Unmarshal(p.Disks, &disks)
	return len(disks)
}
