-- Is this listener connection still subscribed? (LISTEN dies silently with its connection.)
SELECT %(channel)s = ANY(ARRAY(SELECT pg_listening_channels())) AS listening
