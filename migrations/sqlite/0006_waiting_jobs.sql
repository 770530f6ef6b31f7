-- Ordered jobs behind a pending job of their key wait as 'waiting' and move up when
-- it ends, so claims only look at runnable jobs (jobs_pending excludes them).
DROP INDEX jobs_pending_ordering;
CREATE INDEX jobs_pending_ordering ON jobs (ordering_key, seq) WHERE status IN ('queued', 'running', 'waiting');
-- Whether a key has a job queued or running, however many wait behind it.
CREATE INDEX jobs_runnable_ordering ON jobs (ordering_key) WHERE status IN ('queued', 'running');
-- The idle worker's look for waiting jobs with nothing ahead of them.
CREATE INDEX jobs_waiting ON jobs (seq) WHERE status = 'waiting';
