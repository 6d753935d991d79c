-- A wake-up hint for listeners (queue work available, a queue slot freed).
SELECT pg_notify(%(channel)s, %(payload)s)
