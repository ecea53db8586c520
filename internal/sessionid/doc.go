// Package sessionid names the sessions the server runs on a mount server
// by their session number: a prefix ("ir-" for Instant VM Recovery,
// "pub-" for publish) and the number in decimal digits, zero-padded to
// eight. Session 42 is ir-00000042 or pub-00000042 on the server and in
// the mount server's own records alike.
package sessionid
