package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is the release version, set when a release is built:
//
//	go build -ldflags "-X main.version=v0.3.0" ./cmd/holdfast
//
// It is the one package-level variable, because -X can set nothing else;
// the program reads it once, into app.version. Left empty, the version is
// the module's (go install …@vX.Y.Z) or devVersion.
var version string

// devVersion names a build from a source tree without a release version.
const devVersion = "dev"

// versionInfo is what `holdfast version` prints (--json: a contract).
type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	Modified   bool   `json:"modified"`
	CommitTime string `json:"commit_time,omitempty"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

// currentVersion describes this binary.
func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return buildVersion(version, bi)
}

// buildVersion is the version from release (the -X value), else the
// module version in bi, and the VCS revision Go stamped into bi.
func buildVersion(release string, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: release, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = devVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		case "vcs.time":
			v.CommitTime = s.Value
		}
	}
	return v
}

// String is the text of `holdfast version` and `holdfast --version`.
func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "holdfast %s\n", v.Version)
	if v.Commit != "" {
		fmt.Fprintf(&b, "commit: %s", v.Commit)
		if v.CommitTime != "" {
			fmt.Fprintf(&b, " (%s)", v.CommitTime)
		}
		if v.Modified {
			b.WriteString(", with uncommitted changes")
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "go: %s %s\n", v.Go, v.Platform)
	return b.String()
}

func newVersionCommand(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, commit and Go version of this binary",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				return printJSON(a.stdout, mustJSON(a.version))
			}
			_, err := fmt.Fprint(a.stdout, a.version)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print it as JSON")
	return c
}
