// Package jobdef is a backup job's definition: the one typed shape the CLI
// builds, the API checks and stores, and the orchestrator runs.
//
// A definition is a JSON object (stored as given, after the API sealed its
// secrets):
//
//	{"vms": [{"name": "vm1", "disks": ["/vm/vm1.img"]}],
//	 "select": [{"source": "images1", "pattern": "web-*"}, {"source": "vc1", "folder": "/DC0/vm/prod", "tag": "tier/gold"}],
//	 "repository": "repo1", "retention": {"keep_last": 7, "keep_daily": 14, "keep_monthly": 12},
//	 "chunk_size": 1048576, "transport": "auto", "read_limit": 52428800,
//	 "throttle": ["wan: 10.0.0.0/8 -> any 10MiB/s"],
//	 "retries": {"count": 2, "wait_seconds": 30},
//	 "guest": {"pre_freeze": "…", "post_thaw": "…", "policy": "fail", "timeout_seconds": 600, "user": "root"},
//	 "format": "raw", "disk_formats": {"/vm/a.vmdk": "vmdk"}, "recorded_formats": {…},
//	 "follow_backing": false, "exclude_free": true, "exclude_swap": true,
//	 "exclude_paths": ["/var/cache", "/tmp"], "missed": "run-once",
//	 "scan_after": {"engine": "clamscan", "clamav_db": "/var/lib/clamav"}, "rpo": "36h",
//	 "notify": [{"target": "ops-mail"}, {"target": "chat", "on": ["failure", "success"]}],
//	 "password_secret": "job/NAME/password-…", "guest_ssh_key_secret": "job/NAME/ssh-key-…"}
//
// Retention is repo.Policy, the GFS policy of standalone `forget`. A job of
// kind "maintenance" has no VMs but a "maintenance" object (see
// Maintenance); ValidateKind checks a definition for its job's kind, and
// the notification rules (Notify) of every kind.
//
// "password" and "guest_ssh_key" may be given inline in a request; the API
// seals them into secrets and stores only the references. A VM given as a
// bare name ("vms": ["vm1"]) decodes, but Validate refuses it: it lists no
// disks.
//
// "rpo" is the job's recovery point objective (ParseRPO: a duration such
// as "36h" or "2d"); without it the RPO is derived from the schedule
// (DefaultRPO: the longest gap between runs plus half of it, at least an
// hour; daily: 36 h), and an on-demand job has none (EffectiveRPO).
//
// Compression is not part of a job: it is the repository's (`holdfast repo
// init --compression`), and every backup into a repository stores its
// chunks with that repository's setting. A "compression" key is refused
// by name.
//
// Two decoders: Decode is strict (unknown keys are errors naming the key;
// the API uses it for requests), Parse is lenient (keys an older version
// stored are ignored; the orchestrator and the CLI read stored definitions
// with it). Validate checks everything a run needs and names the field of
// the first fault ("definition.vms[1].disks", "schedule"); the API refuses
// an invalid job with 400 and the same message. Errors wrap ErrInvalid.
package jobdef
