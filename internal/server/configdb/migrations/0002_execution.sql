-- 0002_execution: what the server records while it executes jobs.
-- {{id}}, {{time}} and {{blob}} are replaced by the dialect layer.
-- Statements end with a semicolon at the end of a line.

-- Restore points the server committed, keyed by the repository that holds
-- them and the repository's point ID. disks is a JSON array the store does
-- not interpret.
CREATE TABLE points (
    repository   TEXT NOT NULL,
    id           TEXT NOT NULL,
    vm           TEXT NOT NULL,
    job_name     TEXT NOT NULL DEFAULT '',
    session_id   BIGINT REFERENCES sessions (id) ON DELETE SET NULL,
    created_at   {{time}} NOT NULL,
    disks        TEXT NOT NULL DEFAULT '[]',
    bytes_total  BIGINT NOT NULL DEFAULT 0,
    bytes_stored BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (repository, id)
);

CREATE INDEX points_vm_created ON points (vm, created_at);
CREATE INDEX points_id ON points (id);              -- GetPoint looks up by ID alone
CREATE INDEX points_session ON points (session_id); -- ON DELETE SET NULL from sessions

-- Tasks: retry attempt, the point written, time spent per pipeline stage
-- (nanoseconds) and newline-separated warnings.
ALTER TABLE tasks ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN point_id TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN source_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN proxy_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN network_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN target_ns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN warnings TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN bytes_done BIGINT NOT NULL DEFAULT 0; -- disk bytes processed so far (progress)

