package s3

// TouchIsBilled reports that Touch (a COPY of the object onto itself) is a
// billed write request: repositories on object storage protect a backup's
// chunks with its lock instead of touching them (repo's no-touch locks).
func (b *Backend) TouchIsBilled() bool { return true }
