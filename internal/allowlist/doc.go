// Package allowlist is the list of client networks an export (an Instant
// VM Recovery session's NBD and NFS services) answers: parsing the entries
// users give (CIDRs or single addresses), matching a peer's address, the
// requester's own address as the default list, and how wide a list is —
// the backup server lets only administrators export to more than a few
// hosts (see Narrow).
package allowlist
