// Package s3test starts a real S3 server for tests: versitygw (go install
// github.com/versity/versitygw/cmd/versitygw@v1.8.0) with its posix
// backend in a temporary directory, on a free loopback port, with
// versioning (which Object Lock needs).
//
// Where versitygw is not installed the test is skipped, or fails when
// HOLDFAST_REQUIRE_S3 is set (CI sets it: scripts/setup installs it).
package s3test
