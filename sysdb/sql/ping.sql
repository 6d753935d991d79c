-- Is the system database there and answering? (pgfleet check)
SELECT 1 AS ok
