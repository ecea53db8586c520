package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
)

func newSessionCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "session", Short: "Job sessions on the server", Args: noArgs}
	addClientFlags(c, o)
	c.AddCommand(newSessionList(a, o), newSessionShow(a, o), newSessionCancel(a, o))
	return c
}

func newSessionList(a *app, o *clientOptions) *cobra.Command {
	var asJSON bool
	var job, state string
	var limit int
	c := &cobra.Command{Use: "list", Short: "List sessions, newest first", Args: noArgs}
	c.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	c.Flags().StringVar(&job, "job", "", "only sessions of this job")
	c.Flags().StringVar(&state, "state", "", "only sessions in this state (queued, running, success, warning, failed …)")
	c.Flags().IntVar(&limit, "limit", 0, "at most this many sessions")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		q := url.Values{}
		if job != "" {
			q.Set("job", job)
		}
		if state != "" {
			q.Set("state", state)
		}
		if limit > 0 {
			q.Set("limit", strconv.Itoa(limit))
		}
		path := "/api/v1/sessions"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		var raw json.RawMessage
		if err := cl.call(cmd.Context(), "GET", path, "list sessions", nil, &raw); err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, raw)
		}
		var sessions []apitypes.Session
		if err := json.Unmarshal(raw, &sessions); err != nil {
			return err
		}
		rows := make([][]string, 0, len(sessions))
		for _, se := range sessions {
			rows = append(rows, []string{strconv.FormatInt(se.ID, 10), orDash(se.JobName), orDash(se.Kind),
				se.State, fmtTime(&se.Started), fmtTime(se.Ended)})
		}
		return table(a.stdout, []string{"ID", "JOB", "KIND", "STATE", "STARTED", "ENDED"}, rows)
	}
	return c
}

func newSessionShow(a *app, o *clientOptions) *cobra.Command {
	var asJSON, follow bool
	c := &cobra.Command{Use: "show ID [--follow]", Short: "Show a session with its tasks", Args: exactArgs(1)}
	c.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "follow a running session with live progress (bars on a terminal, lines otherwise) until it ends")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || id <= 0 {
			return usageError{fmt.Errorf("session ID %q: want a positive number", args[0])}
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		if follow {
			return a.followSession(cmd.Context(), cl, id)
		}
		var raw json.RawMessage
		if err := cl.call(cmd.Context(), "GET", "/api/v1/sessions/"+args[0], "read sessions", nil, &raw); err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, raw)
		}
		var se apitypes.Session
		if err := json.Unmarshal(raw, &se); err != nil {
			return err
		}
		return a.showSession(se)
	}
	return c
}

// showSession prints a session's fields, then its tasks as a table.
func (a *app) showSession(se apitypes.Session) error {
	state := se.State
	if se.Waiting != "" {
		state += " (" + se.Waiting + ")"
	}
	rows := [][]string{{"Job:", orDash(se.JobName)}, {"Kind:", orDash(se.Kind)}, {"State:", state},
		{"Started:", fmtTime(&se.Started)}, {"Ended:", fmtTime(se.Ended)}}
	if len(se.Result) > 0 && string(se.Result) != "null" {
		rows = append(rows, []string{"Result:", string(se.Result)})
	}
	if err := table(a.stdout, []string{"Session:", strconv.FormatInt(se.ID, 10)}, rows); err != nil {
		return err
	}
	if len(se.Tasks) == 0 {
		_, err := fmt.Fprintln(a.stdout, "\nNo tasks yet.")
		return err
	}
	fmt.Fprintln(a.stdout)
	trows := make([][]string, 0, len(se.Tasks))
	for _, t := range se.Tasks {
		trows = append(trows, []string{t.VM, t.Disk, t.State, orDash(t.Proxy), orDash(t.Repository), orDash(t.Transport),
			formatBytes(t.BytesRead), formatBytes(t.BytesTransferred), formatBytes(t.BytesWritten), orDash(t.Error)})
	}
	return table(a.stdout, []string{"VM", "DISK", "STATE", "PROXY", "REPOSITORY", "TRANSPORT", "READ", "SENT", "WRITTEN", "ERROR"}, trows)
}

func newSessionCancel(a *app, o *clientOptions) *cobra.Command {
	var force bool
	c := &cobra.Command{Use: "cancel ID [--force]", Short: "Cancel a running session (committed points stay)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageError{fmt.Errorf("session ID %q: want a positive number", args[0])}
			}
			if err := cancelServerSession(cmd.Context(), a, o, id, "cancel sessions", force); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "session %d cancelled\n", id)
			return err
		}}
	c.Flags().BoolVar(&force, "force", false, "cancel an Instant VM Recovery session although clients use its exports")
	return c
}
