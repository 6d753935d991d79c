-- Is this listener connection still subscribed to all its channels? (LISTEN dies silently
-- with its session.)
SELECT %(channels)s::text[] <@ ARRAY(SELECT pg_listening_channels()) AS listening
