-- dashboard: what the dashboard (GET /api/v1/dashboard) reads, indexed,
-- and a daily capacity sample per repository for its growth.
-- {{id}}, {{time}} and {{blob}} are replaced by the dialect layer.
-- Statements end with a semicolon at the end of a line.

CREATE INDEX sessions_started ON sessions (started_at);   -- the last 24 h
CREATE INDEX sessions_state ON sessions (state);          -- running sessions
CREATE INDEX points_job_vm ON points (job_name, vm);   -- refreshing newest_points

-- The newest good point (not found infected) of each VM per job, kept by
-- the store as points are recorded, scanned and deleted, so the dashboard
-- reads one row per VM instead of every point.
CREATE TABLE newest_points (
    job_name   TEXT NOT NULL,
    vm         TEXT NOT NULL,
    created_at {{time}} NOT NULL,
    PRIMARY KEY (job_name, vm)
);

INSERT INTO newest_points (job_name, vm, created_at)
    SELECT job_name, vm, MAX(created_at) FROM points
    WHERE job_name <> '' AND scan_result <> 'infected' GROUP BY job_name, vm;
CREATE INDEX points_created ON points (created_at);       -- the points list, newest first

-- One sample per repository agent and UTC day (YYYY-MM-DD): the size and
-- free space of its file system as its last heartbeat of that day reported.
CREATE TABLE repository_samples (
    repository TEXT NOT NULL,
    day        TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    free_bytes BIGINT NOT NULL,
    sampled_at {{time}} NOT NULL,
    PRIMARY KEY (repository, day)
);

-- The newest run of each job (the jobs list), and a job's sessions newest first.
CREATE INDEX sessions_job_kind_id ON sessions (job_name, kind, id);
