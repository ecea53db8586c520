package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// rejectUnknownSubcommands makes every command group under c (a command
// with subcommands and no action of its own, the root included) refuse an
// unknown subcommand as a usage error (exit 2) naming the nearest ones,
// instead of printing its help and exiting 0. A group given no subcommand
// still prints its help. On the root it also makes `help TOPIC` refuse
// an unknown topic the same way.
func rejectUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if help, _, err := c.Find([]string{"help"}); !c.HasParent() && err == nil && help != c {
		help.Run = nil
		help.RunE = helpTopic
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.SuggestionsMinimumDistance = 2
	c.Args = unknownSubcommand
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// unknownSubcommand is the Args check of a command group: any argument is
// a subcommand it does not have.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{errors.New(msg + " (see '" + cmd.CommandPath() + " --help')")}
}

// helpTopic is `help [COMMAND...]`: the command's help, or a usage error
// for a command that does not exist.
func helpTopic(c *cobra.Command, args []string) error {
	cmd, rest, err := c.Root().Find(args)
	if err != nil {
		return usageError{err}
	}
	if len(rest) > 0 {
		return unknownSubcommand(cmd, rest)
	}
	return cmd.Help()
}
