-- Bound what a session may wait for or hold (see sysdb/links.py): a statement stuck behind a
-- lock ends after statement_timeout, and a session left idle inside a transaction (a paused or
-- cut-off client) is ended by the server after idle_in_transaction_session_timeout, releasing
-- its locks. is_local limits the settings to the current transaction. Milliseconds; 0 = none.
SELECT set_config('statement_timeout', %(statement_timeout)s, %(is_local)s),
       set_config('idle_in_transaction_session_timeout', %(idle_in_transaction_session_timeout)s, %(is_local)s)
