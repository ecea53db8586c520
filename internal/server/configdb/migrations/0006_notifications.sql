-- 0004_notifications: notification targets (e-mail over SMTP, webhooks),
-- the durable outbox of messages to them, and which ended sessions were
-- turned into messages.
--
-- config is the target's JSON without secrets; secret names the sealed
-- secret (SMTP password, webhook HMAC key) or is empty. summary_at is the
-- daily summary's time of day (HH:MM, UTC; empty: no summary), summary_day
-- the day (YYYY-MM-DD) of the last summary queued.
CREATE TABLE notification_targets (
    id          {{id}},
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    config      TEXT NOT NULL,
    secret      TEXT NOT NULL DEFAULT '',
    summary_at  TEXT NOT NULL DEFAULT '',
    summary_day TEXT NOT NULL DEFAULT '',
    created_at  {{time}} NOT NULL,
    updated_at  {{time}} NOT NULL
);

-- One message to one target: pending until delivered, or failed after
-- its last attempt; log holds one line per attempt.
CREATE TABLE notification_outbox (
    id           {{id}},
    target       TEXT NOT NULL,
    session_id   BIGINT NOT NULL DEFAULT 0,
    event        TEXT NOT NULL,
    message      TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      {{time}} NOT NULL,
    created_at   {{time}} NOT NULL,
    delivered_at {{time}},
    last_error   TEXT NOT NULL DEFAULT '',
    log          TEXT NOT NULL DEFAULT ''
);

CREATE INDEX notification_outbox_due ON notification_outbox (state, next_at);
CREATE INDEX notification_outbox_target ON notification_outbox (target, id);

-- Sessions ended before this migration are not announced.
ALTER TABLE sessions ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET notified = 1 WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_notified ON sessions (notified, ended_at);
