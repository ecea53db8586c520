-- 0001_initial: the first schema, for SQLite and PostgreSQL alike.
-- {{id}}, {{time}} and {{blob}} are replaced by the dialect layer.
-- Statements end with a semicolon at the end of a line.

CREATE TABLE api_tokens (
    id           {{id}},
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('administrator', 'backup_operator', 'restore_operator', 'viewer')),
    token_hash   {{blob}} NOT NULL UNIQUE,   -- SHA-256 of the token; the token itself is never stored
    created_at   {{time}} NOT NULL,
    last_used_at {{time}}
);

CREATE TABLE join_tokens (
    id         {{id}},
    token_hash {{blob}} NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('proxy', 'repository')),
    created_at {{time}} NOT NULL,
    expires_at {{time}} NOT NULL,
    used_at    {{time}},
    used_by    TEXT NOT NULL DEFAULT ''
);

CREATE TABLE agents (
    id               {{id}},
    role             TEXT NOT NULL CHECK (role IN ('proxy', 'repository')),
    name             TEXT NOT NULL,
    address          TEXT NOT NULL DEFAULT '',
    slots            INTEGER NOT NULL DEFAULT 1 CHECK (slots >= 0),
    capabilities     TEXT NOT NULL DEFAULT '{}',
    cert_fingerprint TEXT NOT NULL DEFAULT '',
    registered_at    {{time}} NOT NULL,
    last_heartbeat   {{time}},
    UNIQUE (role, name)
);

CREATE TABLE sources (
    id         {{id}},
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at {{time}} NOT NULL,
    updated_at {{time}} NOT NULL
);

CREATE TABLE jobs (
    id         {{id}},
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL DEFAULT 'backup',
    definition TEXT NOT NULL,
    schedule   TEXT NOT NULL DEFAULT '',
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at {{time}} NOT NULL,
    updated_at {{time}} NOT NULL
);

CREATE TABLE sessions (
    id         {{id}},
    job_id     BIGINT REFERENCES jobs (id) ON DELETE SET NULL,
    job_name   TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'warning', 'failed', 'cancelled')),
    started_at {{time}} NOT NULL,
    ended_at   {{time}},
    result     TEXT
);

CREATE INDEX sessions_job_started ON sessions (job_name, started_at);

CREATE TABLE tasks (
    id                {{id}},
    session_id        BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    vm                TEXT NOT NULL,
    disk              TEXT NOT NULL,
    proxy             TEXT NOT NULL DEFAULT '',
    repository        TEXT NOT NULL DEFAULT '',
    transport         TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'warning', 'failed', 'cancelled')),
    queued_at         {{time}} NOT NULL,
    started_at        {{time}},
    ended_at          {{time}},
    bytes_total       BIGINT NOT NULL DEFAULT 0,
    bytes_read        BIGINT NOT NULL DEFAULT 0,
    bytes_transferred BIGINT NOT NULL DEFAULT 0,
    bytes_written     BIGINT NOT NULL DEFAULT 0,
    error             TEXT NOT NULL DEFAULT ''
);

CREATE INDEX tasks_session ON tasks (session_id);

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,       -- identifies the master key the value was sealed under
    ciphertext {{blob}} NOT NULL,   -- nonce || AES-256-GCM(value), associated data: name
    created_at {{time}} NOT NULL,
    updated_at {{time}} NOT NULL
);

CREATE TABLE audit_log (
    id      {{id}},
    at      {{time}} NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    details TEXT
);

CREATE INDEX audit_log_at ON audit_log (at);
