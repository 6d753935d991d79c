"""Leader terms count elections (``pgfleet_leader_term``, the console's leader log): a candidate
that finds the previous lease still valid takes no term, however often it tries. A restarted
worker (its executor id again, a new epoch) used to take one every tick until its dead
predecessor's lease ran out: one SIGKILL of a leader showed as five elections."""

from __future__ import annotations

import os

import test_coordination_inprocess as coordination
from sysdb.session_names import executor_session_name
from test_coordination_inprocess import LEASE_TTL, end_backend, leader_row

# The in-process coordination fixtures: members on pools of their own, on one fake clock.
join, clock = coordination.join, coordination.clock


def test_a_restarted_leader_waiting_out_its_old_lease_takes_no_term_until_it_is_elected(join, clock, db):
    old = join("a")
    old.live()
    first_term = old.elector.term
    assert old.elector.is_leader and first_term is not None
    end_backend(db, executor_session_name(os.getpid(), "a", "leader"))  # the lock is free, the lease is not
    restarted = join("a")  # the same executor id, a new incarnation
    for _ in range(5):
        restarted.live()  # holds the lock, finds the lease valid, tries again next tick
        assert not restarted.elector.is_leader
    assert leader_row(db) == ("a", first_term)
    clock.advance(LEASE_TTL + 1)
    restarted.live()
    assert restarted.elector.is_leader and restarted.elector.term == first_term + 1
