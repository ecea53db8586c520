package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newUserCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "user", Short: "Web console users on the server: add, list, remove, passwd, totp (administrators)", Args: noArgs}
	addClientFlags(c, o)
	c.AddCommand(newUserAdd(a, o), newUserList(a, o), newUserPasswd(a, o), newUserTOTP(a, o), &cobra.Command{
		Use: "remove NAME", Short: "Delete a console user (ends its login sessions)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.jobAction(cmd.Context(), o, "DELETE", "/api/v1/users/"+url.PathEscape(args[0]),
				"remove users", "removed user "+args[0])
		},
	})
	return c
}

// addPasswordFileFlag adds --password-file for a user's password.
func addPasswordFileFlag(c *cobra.Command, file *string) {
	c.Flags().StringVar(file, "password-file", "", `file holding the user's password (first line; "-": standard input); default: prompt twice on the terminal`)
}

func newUserAdd(a *app, o *clientOptions) *cobra.Command {
	var role, file string
	c := &cobra.Command{
		Use:   "add NAME --role ROLE [--password-file FILE]",
		Short: "Add a console user",
		Long: `Add a user who logs in to the web console with a password. ROLE is
` + tokenRoles + ` (the same roles as API tokens). The password
(at least 12 characters) is read from --password-file, or asked twice on the
terminal; never give it on the command line. The server keeps an argon2id
hash of it only.`,
		Args: exactArgs(1),
	}
	c.Flags().StringVar(&role, "role", "", "user role: "+tokenRoles+" (required)")
	addPasswordFileFlag(c, &file)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		switch role {
		case "administrator", "backup_operator", "restore_operator", "viewer":
		default:
			return usageError{fmt.Errorf("--role %q: want %s", role, tokenRoles)}
		}
		pw, err := a.userPassword(cmd.Context(), file, args[0])
		if err != nil {
			return err
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		req := apitypes.UserRequest{Name: args[0], Role: role, Password: pw}
		if err := cl.call(cmd.Context(), "POST", "/api/v1/users", "add users", req, nil); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "added user %s (%s)\n", args[0], role)
		return err
	}
	return c
}

func newUserList(a *app, o *clientOptions) *cobra.Command {
	return newListCommand(a, o, listSpec[apitypes.User]{
		short: "List console users (never their passwords)", what: "list users", path: "/api/v1/users",
		header: []string{"NAME", "ROLE", "TOTP", "CREATED", "LAST LOGIN", "LOCKED UNTIL"},
		row: func(u apitypes.User) []string {
			totp := "no"
			if u.TOTP {
				totp = "yes"
			}
			return []string{u.Name, u.Role, totp, fmtTime(&u.Created), fmtTime(u.LastLogin), fmtTime(u.LockedUntil)}
		},
	})
}

func newUserPasswd(a *app, o *clientOptions) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "passwd NAME [--password-file FILE]",
		Short: "Set a console user's password (lifts a lock-out, ends its sessions)",
		Args:  exactArgs(1),
	}
	addPasswordFileFlag(c, &file)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		pw, err := a.userPassword(cmd.Context(), file, args[0])
		if err != nil {
			return err
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		path := "/api/v1/users/" + url.PathEscape(args[0]) + "/password"
		if err := cl.call(cmd.Context(), "PUT", path, "set passwords", apitypes.PasswordRequest{Password: pw}, nil); err != nil {
			return err
		}
		_, err = fmt.Fprintln(a.stdout, "set the password of user "+args[0])
		return err
	}
	return c
}

func newUserTOTP(a *app, o *clientOptions) *cobra.Command {
	var disable bool
	c := &cobra.Command{
		Use:   "totp NAME [--disable]",
		Short: "Give a console user a new TOTP key (prints it once), or remove it",
		Long: `Give a user a new TOTP key and print it, this once: the otpauth:// URL (for
a QR code) and the base32 secret for an authenticator app. From then on the
user's logins need the current six-digit code. --disable removes the key.`,
		Args: exactArgs(1),
	}
	c.Flags().BoolVar(&disable, "disable", false, "remove the user's TOTP key")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		path := "/api/v1/users/" + url.PathEscape(args[0]) + "/totp"
		if disable {
			return a.jobAction(cmd.Context(), o, "DELETE", path, "change TOTP", "removed the TOTP key of user "+args[0])
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var key apitypes.TOTPKey
		if err := cl.call(cmd.Context(), "POST", path, "change TOTP", nil, &key); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\nsecret: %s\n", key.URL, key.Secret)
		return err
	}
	return c
}

// userPassword reads a console user's new password: from file ("-":
// standard input), else twice from the terminal. It never comes from argv
// or from the repository password variables.
func (a *app) userPassword(ctx context.Context, file, user string) (string, error) {
	if file != "" {
		r := a.stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return "", fmt.Errorf("--password-file: %w", err)
			}
			defer f.Close()
			r = f
		}
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", usageError{errors.New("--password-file: empty password")}
		}
		return pw, nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{errors.New("no password: use --password-file FILE (or - for standard input), or run on a terminal")}
	}
	p, err := a.prompt(ctx, int(f.Fd()), "Password for "+user+": ")
	if err != nil {
		return "", err
	}
	q, err := a.prompt(ctx, int(f.Fd()), "Repeat password: ")
	if err != nil {
		return "", err
	}
	if string(p) != string(q) {
		return "", usageError{errors.New("passwords do not match")}
	}
	return string(p), nil
}
