-- Where a chaos run's embedded server listens: loopback plus the database ends of its veth
-- links (ALTER SYSTEM outranks the managed pgfleet.conf; composed: a literal, not a parameter).
ALTER SYSTEM SET listen_addresses = {addresses}
