// Package tlsconf builds the TLS configuration every Holdfast listener and
// dialer starts from (the server's REST API, the repository agents' data
// mover service, NBD over TLS, and the agents' and CLI's clients):
//
//   - TLS 1.2 at least;
//   - with TLS 1.2, only AEAD cipher suites with forward secrecy: ECDHE
//     with AES-GCM or ChaCha20-Poly1305. CBC suites (Lucky13-style
//     padding oracles) and static RSA key exchange are refused. TLS 1.3
//     suites are all AEAD and not configurable.
//
// Base returns a new configuration with these settings; Harden applies them
// to a configuration built elsewhere (a caller's NBD configuration, say).
// Nothing else in Holdfast sets MinVersion or CipherSuites.
package tlsconf
