// Package pgtest finds or starts a PostgreSQL server for tests and hands out
// empty, isolated schemas in it. It is a non-test package so the tests of any
// package (and the external processes they start, such as
// `holdfast server --db DSN`) can share one setup.
//
// The server is found in this order:
//   - HOLDFAST_TEST_POSTGRES=postgres://user:pw@host:port/db: a database in
//     which the user may CREATE SCHEMA.
//   - as root with Debian's postgresql installed: the local cluster is
//     started if down (pg_ctlcluster; it is left running), a throwaway role
//     and database are created through psql run as the postgres user, and
//     dropped when the test ends.
//   - otherwise the test is skipped, or fails if HOLDFAST_REQUIRE_POSTGRES is
//     set (CI sets it so a broken setup cannot pass as a skip).
//
// Isolation: every FreshDSN is a new schema (CREATE SCHEMA hf_<random>),
// selected by a search_path parameter in the DSN, which pgx sends as a
// run-time parameter at connect time; the schema is dropped (CASCADE) when
// the test ends. With the local cluster the base database is itself a
// throwaway one, so FreshDSN there isolates by database and schema.
//
// DSNs carry passwords: never log them as they are, use Redact.
package pgtest
