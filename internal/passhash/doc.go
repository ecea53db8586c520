// Package passhash hashes login passwords with argon2id and checks them.
//
// A hash is stored in the PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt (16 random bytes) and key (32 bytes) in unpadded standard
// base64. m is the memory in KiB, t the passes, p the lanes: the defaults
// follow OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane). Check
// recomputes the key with the parameters the hash names, within bounds
// (Parse refuses a hash asking for more than 256 MiB, 16 passes or 16
// lanes, so a tampered database cannot make a login exhaust the server),
// and compares in constant time.
//
// Login passwords are server credentials; the repository's own key
// derivation (internal/repo) is separate and not changed by this package.
package passhash
