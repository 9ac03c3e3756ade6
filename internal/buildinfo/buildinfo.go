// Package buildinfo names the release and the commit a binary was built
// from. It is its own package so that the CLI (twofactor version) and the
// service (its startup log line) read one stamp without importing each
// other.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Version is the host's release and Revision the commit it was built
// from. The Makefile stamps both from git with -ldflags "-X …"; a binary
// built otherwise (go build, go install) takes them from its build info:
// the module's version (a tag when installed by version) and vcs.revision
// (when built in a git checkout).
var (
	Version  = ""
	Revision = ""
)

// Release is the release name and revision, each "unknown" ("dev" for
// the release) when neither the stamp nor the build info has it, and
// whether the checkout had uncommitted changes.
func Release() (version, revision string, modified bool) {
	version, revision = Version, Revision
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && revision == "":
				revision = s.Value
			case s.Key == "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if version == "" {
		version = "dev"
	}
	if revision == "" {
		revision = "unknown"
	}
	return version, revision, modified
}

// String is what twofactor version prints.
func String() string {
	v, rev, modified := Release()
	s := fmt.Sprintf("twofactor %s (revision %s", v, rev)
	if modified {
		s += ", with uncommitted changes"
	}
	return s + ")"
}
