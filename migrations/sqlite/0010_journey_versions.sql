-- Journey Builder: a journey (originalDefinitionId) has versions (interactionId,
-- the execute call's journeyId). Lifecycle calls name both, so they link versions to
-- their journey; an execute keeps the activity instance and the mode it ran in.
ALTER TABLE inbound_events ADD COLUMN definition_id TEXT;
ALTER TABLE inbound_events ADD COLUMN activity_instance_id TEXT;
ALTER TABLE inbound_events ADD COLUMN journey_mode TEXT;
CREATE INDEX inbound_events_journey_links ON inbound_events (tenant_id, journey_id)
    WHERE definition_id IS NOT NULL;

-- What an execute is answered when no pass matches: 'leave' (404: Salesforce takes
-- the contact out of the journey, as the reference does) or 'continue' (200
-- {"scheduled":0}: the contact goes on to the journey's next steps).
ALTER TABLE sfmc_settings ADD COLUMN when_no_pass TEXT NOT NULL DEFAULT 'leave';
