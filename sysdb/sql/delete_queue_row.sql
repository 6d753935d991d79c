-- Delete a database-backed queue (its claimers stop claiming from it; its queued workflows stay).
DELETE FROM dbos.queues WHERE name = %(name)s
