"""Workflows and steps on classes from sync code: instance methods of configured instances,
class and static methods, each called, started and enqueued; what the status rows say of them
(class_name, config_name); two instances under one name; a method workflow on a class DBOS was
not told about."""

from dbos import DBOS, DBOSConfiguredInstance, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-classes", "system_database_url": database_url()})
queue = Queue("classes-queue")


@DBOS.dbos_class()
class Counter(DBOSConfiguredInstance):
    def __init__(self, name, start):
        self.start = start
        super().__init__(name)

    @DBOS.step()
    def bump(self, by):
        return self.start + by

    @DBOS.workflow()
    def count(self, by):
        return [self.config_name, self.bump(by), DBOS.workflow_id]

    @classmethod
    @DBOS.workflow()
    def kind(cls, x):
        return [cls.__name__, x]

    @staticmethod
    @DBOS.workflow()
    def helper(x):
        return x * 3


class Undeclared:
    @DBOS.workflow()
    def method(self, x):
        return x


def row(workflow_id):
    s = DBOS.get_workflow_status(workflow_id)
    return [s.status, s.name.split(".")[-1], s.class_name, s.config_name]


first = Counter("first", 10)
second = Counter("second", 20)

if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("cls-call"):
        see("instance call", first.count(1))
    with SetWorkflowID("cls-start"):
        see("instance start", DBOS.start_workflow(second.count, 2).get_result())
    with SetWorkflowID("cls-enqueue"):
        see("instance enqueue", queue.enqueue(first.count, 3).get_result())
    with SetWorkflowID("cls-classmethod"):
        see("classmethod call", Counter.kind(4))
    with SetWorkflowID("cls-classmethod-start"):
        see("classmethod start", DBOS.start_workflow(Counter.kind, 5).get_result())
    with SetWorkflowID("cls-static"):
        see("staticmethod call", Counter.helper(6))
    with SetWorkflowID("cls-static-enqueue"):
        see("staticmethod enqueue", queue.enqueue(Counter.helper, 7).get_result())
    see("step outside a workflow", first.bump(8))
    for wid in ["cls-call", "cls-start", "cls-enqueue", "cls-classmethod", "cls-classmethod-start", "cls-static", "cls-static-enqueue"]:
        see(f"row {wid}", row(wid))
    attempt("a second instance under one name", lambda: Counter("first", 99))
    with SetWorkflowID("cls-undeclared"):
        attempt("method of an undeclared class", lambda: Undeclared().method(9))
    report()
    DBOS.destroy()
