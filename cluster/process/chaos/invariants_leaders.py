"""``one-leader``: one acting leader per moment. Every leader action is logged only while its
lease (holder and term) is valid (sysdb/sql/log_leader_action.sql), so a correct fleet logs the
actions of one executor per term, and no action of a term after an action of a later term: a new
term begins only once the old lease has expired. Actions are ordered by their ``at`` (the
database time of their transaction), then id.
"""

from __future__ import annotations

from collections import defaultdict

from sysdb.chaos_history import ChaosHistoryRows, LeaderAction

from .model import InvariantResult, Violation
from .replay import evidence, ts

__all__ = ["check_one_leader"]


def _two_leaders(actions: list[LeaderAction]) -> list[Violation]:
    by_term: dict[int, list[LeaderAction]] = defaultdict(list)
    for a in actions:
        by_term[a.term].append(a)
    found = []
    for term, rows in sorted(by_term.items()):
        executors = sorted({a.executor_id for a in rows})
        if len(executors) > 1:
            firsts = [next(a for a in rows if a.executor_id == e) for e in executors]
            found.append(Violation(f"term {term}: actions logged by {len(executors)} executors, {executors}", [evidence(a) for a in firsts]))
    return found


def _terms_out_of_order(actions: list[LeaderAction]) -> list[Violation]:
    found = []
    latest: LeaderAction | None = None  # the first action of the highest term so far
    reported: set[tuple[int, int]] = set()
    for a in sorted(actions, key=lambda a: (a.at, a.id)):
        if latest is None or a.term > latest.term:
            latest = a
        elif a.term < latest.term and (a.term, latest.term) not in reported:
            reported.add((a.term, latest.term))
            found.append(Violation(
                f"term {a.term} ({a.executor_id}) acted at {ts(a.at)} ({a.action}), after term {latest.term} "
                f"({latest.executor_id}) began at {ts(latest.at)}: two leaders acted at once",
                [evidence(latest), evidence(a)],
            ))
    return found


def check_one_leader(history: ChaosHistoryRows) -> InvariantResult:
    """One executor per term, and terms strictly increasing with time."""
    actions = history.leader_actions
    found = _two_leaders(actions) + _terms_out_of_order(actions)
    terms = sorted({a.term for a in actions})
    if terms:
        leaders = sorted({a.executor_id for a in actions})
        note = f"{len(terms)} terms ({terms[0]}..{terms[-1]}), led by {', '.join(leaders)}"
    else:
        note = "no leader action was logged"
    return InvariantResult("one-leader", "one acting leader per moment, terms strictly increasing", len(actions), found, note)
