// Package backends opens a repository's storage from its location as
// users write it: a directory (the local backend) or an s3:// / s3+http://
// URL (internal/repo/storage/s3). Commands, agents and the processes that
// clean up after them open storage only here, so every one of them
// accepts the same locations.
package backends
