// Package smtptest starts a real SMTP server for tests: mailpit (go
// install github.com/axllent/mailpit@v1.33.1) on loopback ports, with
// SMTP authentication and STARTTLS or implicit TLS under a certificate
// the test makes, and reads the messages it received through its HTTP
// API.
//
// Where mailpit is not installed the test is skipped, or fails when
// HOLDFAST_REQUIRE_SMTP is set (CI sets it: scripts/setup installs it).
package smtptest
