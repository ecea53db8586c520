-- 0003_point_scans: the newest malware scan of a point the server ran
-- (a job's scan_after): engine, result (clean, infected, failed), how
-- many findings, when. An empty scan_result: never scanned by the server.
ALTER TABLE points ADD COLUMN scan_engine TEXT NOT NULL DEFAULT '';
ALTER TABLE points ADD COLUMN scan_result TEXT NOT NULL DEFAULT '';
ALTER TABLE points ADD COLUMN scan_findings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE points ADD COLUMN scan_at {{time}};
