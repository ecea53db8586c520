// Package server runs the Holdfast backup server: on first start it creates
// its data directory (the configuration database, the server's own CA, a
// master key sealing stored secrets and an administrator token), then it
// serves the REST API over HTTPS.
//
// Data directory layout:
//
//	holdfast.db      configuration database (SQLite; or --db postgres://…)
//	ca.pem           the server's CA certificate (clients and agents trust it)
//	ca-key.pem       its key (0600)
//	master.key       32 random bytes sealing secrets in the database (0600)
//	admin.token      the first administrator API token (0600), created once
//	server.lock      flocked by the running server (holds its PID): a second
//	                 server on the directory exits with ErrDataDirLocked
//
// This is the control plane's entry point; agents (proxies, repositories),
// job execution and the scheduler are wired in by later work.
package server
