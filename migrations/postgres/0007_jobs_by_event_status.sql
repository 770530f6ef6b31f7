-- Settling an event asks whether any of its jobs is unfinished: with the status in
-- the index that is one seek, even for a BULK event with thousands of callbacks.
DROP INDEX jobs_event;
CREATE INDEX jobs_event_status ON jobs (event_id, status);
