"""Errors as DBOS raises them, with DBOS's message texts (#10 item 6)."""

from dbos import DBOS, DBOSConfiguredInstance, Queue, SetEnqueueOptions, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-errors", "system_database_url": database_url()})
queue = Queue("errors-queue")


@DBOS.workflow()
def first(x):
    return x


@DBOS.workflow()
def second(x):
    return x


@DBOS.step(retries_allowed=True, max_attempts=2, interval_seconds=0.01)
def always_fails():
    raise RuntimeError("step failed")


@DBOS.workflow()
def runs_failing_step():
    always_fails()


@DBOS.workflow()
def slow():
    DBOS.sleep(0.2)
    return "slow"


if __name__ == "__main__":
    DBOS.launch()
    attempt("send to a missing workflow", lambda: DBOS.send("no-such-workflow", "hi", "topic"))
    attempt("set_event outside a workflow", lambda: DBOS.set_event("key", "value"))
    attempt("get_event of a missing workflow", lambda: DBOS.get_event("no-such-workflow", "key", timeout_seconds=0))
    with SetWorkflowID("reused-id"):
        first(1)
    with SetWorkflowID("reused-id"):
        attempt("workflow id reused with another function", lambda: second(1))
    with SetEnqueueOptions(deduplication_id="dedup-1"):
        holder = queue.enqueue(slow)
    with SetWorkflowID("dedup-second"), SetEnqueueOptions(deduplication_id="dedup-1"):
        attempt("deduplicated enqueue", lambda: queue.enqueue(slow))
    # Waited for, so that what is recorded does not depend on when each package's queue polls.
    see("the holder of the deduplication id", holder.get_result())
    attempt("step retries exhausted", lambda: runs_failing_step())
    attempt("invalid priority", lambda: SetEnqueueOptions(priority=-1))
    attempt("queue declared twice", lambda: Queue("errors-queue"))

    def decorate_twice():
        @DBOS.workflow()
        @DBOS.workflow()
        def twice():
            return 1

    attempt("decorating a function twice", decorate_twice)

    def register_two_under_one_name():
        @DBOS.workflow(name="shared-name")
        def one():
            return 1

        @DBOS.workflow(name="shared-name")
        def two():
            return 2

        return one(), two()  # each call runs its own function

    attempt("two functions under one name", register_two_under_one_name)

    def nameless_instance():
        @DBOS.dbos_class()
        class Configured(DBOSConfiguredInstance):
            def __init__(self):
                super().__init__(None)

        Configured()

    attempt("configured instance without a name", nameless_instance)

    def method_without_class():
        class Plain:
            @DBOS.workflow()
            def method(self):
                return 1

        return Plain().method()

    attempt("method of an undecorated class", method_without_class)
    DBOS.destroy()
    report()
