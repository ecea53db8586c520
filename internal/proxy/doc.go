// Package proxy is the backup proxy agent: the source-side data mover of
// the distributed mode. It runs a fixed number of workers (its task slots);
// each long-polls the backup server for a task attempt, runs it and reports
// progress every second and the result at the end, over mutual TLS with the
// certificate the proxy received when it joined.
//
// A backup attempt reads one VM disk (image path or NBD URL), attaches to
// the VM's shared data mover session on the repository agent the server
// named, stores the disk's chunks and index under the point the server
// chose, and reports the disk's manifest entry; the server commits the
// point when all disks of the VM are in. A restore attempt writes one disk
// of a point to a path on the proxy's host, only beneath the proxy's
// restore roots (reached without following symbolic links) or to one of
// its restore devices, and replaces an existing file only when the request
// says force (pipeline.OpenTarget with a Confinement). Chunks are sealed (compressed,
// encrypted) and opened here, so the link to the repository carries reduced
// data; traffic rules from the job pace that link.
//
// An attempt the server no longer runs (it declared the proxy lost and
// moved the task) is cancelled at the next progress report and its result
// dropped.
package proxy
