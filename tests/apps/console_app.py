"""An app for `pgfleet supervise` in tests/test_console_browser.py: workflows the console shows.

- ``console_wait`` waits for a message for minutes: it stays PENDING (something to cancel, and
  something a killed worker owns when it dies).
- ``console_echo`` returns its input at once (SUCCESS); its input may be any text, markup too.
- ``console_fail`` raises (ERROR).
Queue ``console_jobs`` is what the fleet's first node serves; ``console_kill`` is served only by
the node the test kills, so the workflow it owns there is known.
"""

from runtime import DBOS, Queue

console_jobs = Queue("console_jobs", worker_concurrency=8)
console_kill = Queue("console_kill", worker_concurrency=8)


@DBOS.step()
def remember(text):
    return text


@DBOS.workflow(name="console_wait")
def console_wait(tag):
    remember(tag)
    return DBOS.recv("go", timeout_seconds=600)


@DBOS.workflow(name="console_echo")
def console_echo(text):
    return remember(text)


@DBOS.workflow(name="console_fail")
def console_fail(text):
    remember(text)
    raise ValueError(f"failed on purpose: {text}")
