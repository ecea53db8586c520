// Package scan runs a malware scanner over the guest filesystems of a
// published restore point and decides whether the point is clean,
// infected or not scanned; it records the result on the point
// (repo.ScanRecord) and finds the newest clean point of a VM.
//
// # Engines
//
// Two engines, each an external program run without a shell:
//
//	clamscan  clamscan -r -i --no-summary --follow-dir-symlinks=0 --follow-file-symlinks=0 -d DB
//	          --max-filesize=2047M --max-scansize=2047M --max-dir-recursion=2048
//	          --alert-exceeds-max=yes ROOT…
//	          exit 0 clean, 1 found, anything else an error
//	          stdout: one "PATH: SIGNATURE FOUND" record per infected file
//	yara      yara -r -N -w holdfast:RULES ROOT…
//	          exit 0 completed, anything else an error; yara has no "found"
//	          exit code: every "RULE PATH" record on stdout is a finding
//
// clamscan's limits are raised to the most it scans (its defaults, 100 MiB
// a file, 400 MiB a scan and 15 directory levels, skip bigger and deeper
// files silently: an infected 150 MB file, or one 16 directories down,
// read as clean). What it still does not scan whole (a file of
// 2 GiB or more, an archive past its recursion or file-count limits) it
// reports as a Heuristics.Limits.Exceeded.* "finding"; those are not
// findings but make the result failed ("not fully scanned: …", naming up to
// ten files), never clean.
//
// ROOT… are the host mount points of every mounted guest filesystem, in
// one run (clamscan loads its database once). Symbolic links are never
// followed: a guest's link to /etc/shadow names a file of the host.
//
// The engine's identity is its version (clamscan --version, yara
// --version) and a SHA-256 over its database (every regular file of the
// ClamAV database directory, by name, size and content; the yara rules
// file): two scans with the same identity give the same answer, so a
// recorded result is reused rather than scanned again.
//
// # Results
//
//   - clean: the engine ran to completion and found nothing;
//   - infected: at least one finding, or clamscan's exit code 1 (findings
//     that do not parse still count: the exit code decides);
//   - failed: the engine could not run or did not complete (program
//     missing, database missing or empty, rules that do not compile, an
//     error exit without findings, a "LibClamAV Error" on clamscan's
//     error output even with exit 0 — it skipped a file it could not
//     read —, no filesystem mounted), or did not
//     scan everything: "not fully scanned" when publish could not publish
//     a part of the point (a damaged partition table, a volume group
//     skipped because the host has one of its name — CentOS guests on a
//     CentOS host: "cl" —, a filesystem that did not mount, one of a type
//     publish does not mount: vfat, ntfs, crypto_LUKS …) or clamscan
//     left a file over its limits. Failed is never reported as clean.
//     Errors wrap ErrNotScanned.
//
// # Engine output is untrusted
//
// File names come from the guest: they may hold ": ", " FOUND", newlines
// and bytes that are not UTF-8. The parsers read the output as records
// that start at a line beginning with one of the scanned roots (clamscan)
// or a rule identifier, a space and a root (yara); a line that does not
// start a record continues the previous one (a name with a newline).
// Records are bounded (64 KiB each) and only the first MaxFindings are
// kept, however much a guest makes the engine print. A name crafted to
// look like a second record can split one finding into two; it cannot
// turn an infected result clean, as clamscan's exit code and yara's
// non-empty output decide. A finding's path is relative to the guest
// filesystem's root ("/etc/x"), never the host mount path; printers
// escape it (strconv.Quote style) before it reaches a terminal.
//
// # Finding a clean point
//
// FindClean assumes that an infection, once present, stays in every later
// point: it checks the newest point first, and if that is infected,
// binary-searches the older ones for the boundary (at most 1 + ⌈log2 n⌉ scans
// for n points). The point it returns has always been checked clean itself;
// Checker.Check reuses a recorded result of the same engine identity.
package scan
