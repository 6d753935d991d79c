-- End the chosen backends (pg_terminate_backend); which of them were still there to end.
SELECT t.pid, pg_terminate_backend(t.pid) AS terminated FROM unnest(%(pids)s::int[]) AS t(pid)
