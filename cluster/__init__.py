"""pgfleet cluster: membership, heartbeats, leader election, claiming, takeover, supervisor."""
