package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// parseDatastorePaths reads the values of --datastore-path NAME=DIR
// (repeatable): the local directory at which this host sees vSphere
// datastore NAME (an NFS datastore mounted here, a SAN/VMFS path), for the
// direct transport. DIR must be absolute; a NAME may be given once.
func parseDatastorePaths(values []string) (map[string]string, error) {
	paths := make(map[string]string, len(values))
	for _, v := range values {
		name, dir, ok := strings.Cut(v, "=")
		switch {
		case !ok || name == "" || dir == "":
			return nil, usageError{fmt.Errorf("--datastore-path %q: want NAME=DIR (a datastore name and the local directory where it is mounted)", v)}
		case !filepath.IsAbs(dir):
			return nil, usageError{fmt.Errorf("--datastore-path %q: the directory must be an absolute path", v)}
		case paths[name] != "":
			return nil, usageError{fmt.Errorf("--datastore-path: datastore %q given twice", name)}
		}
		paths[name] = filepath.Clean(dir)
	}
	return paths, nil
}
