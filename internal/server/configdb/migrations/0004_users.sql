-- 0004_users: local users of the web console and their login sessions.
-- password_hash is an argon2id PHC string (internal/passhash); totp_secret
-- is the TOTP key sealed with the master key (AES-256-GCM, "user-totp:"
-- and the user's id as associated data), NULL without TOTP. A user whose
-- failed_logins reach the server's limit is locked until locked_until.
CREATE TABLE users (
    id            {{id}},
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('administrator', 'backup_operator', 'restore_operator', 'viewer')),
    password_hash TEXT NOT NULL,
    totp_secret   {{blob}},
    totp_last_step BIGINT NOT NULL DEFAULT 0, -- the newest TOTP time step used: a code is good once
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  {{time}},
    created_at    {{time}} NOT NULL,
    updated_at    {{time}} NOT NULL,
    last_login_at {{time}}
);

-- A login session: the cookie's SHA-256 only (the cookie itself is never
-- stored). expires_at moves forward with use (idle timeout) up to
-- max_expires_at (absolute lifetime).
CREATE TABLE login_sessions (
    id             {{id}},
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash   {{blob}} NOT NULL UNIQUE,
    created_at     {{time}} NOT NULL,
    expires_at     {{time}} NOT NULL,
    max_expires_at {{time}} NOT NULL
);

CREATE INDEX login_sessions_user ON login_sessions (user_id);
