"""Database URLs in the forms DBOS programs use (#10 item 1)."""

import time

from dbos import DBOS, DBOSClient
from observe import database_url, report, see

# The SQLAlchemy form most DBOS apps and DBOS's docs use.
DBOS(config={"name": "differential-urls", "system_database_url": database_url().replace("postgresql://", "postgresql+psycopg://", 1)})


@DBOS.workflow()
def hello(name):
    return f"hello {name}"


if __name__ == "__main__":
    DBOS.launch()
    see("workflow on a postgresql+psycopg URL", hello("urls"))
    client = DBOSClient(system_database_url=database_url().replace("postgresql://", "postgresql+psycopg://", 1))
    see("client on a postgresql+psycopg URL", [w.name for w in client.list_workflows()])
    client.destroy()
    DBOS.destroy()
    started = time.monotonic()
    # A server that is not there: DBOS fails at once, it does not retry for a minute.
    # (The error's class is the driver's in DBOS, pgfleet's own here: only the time is compared.)
    try:
        DBOSClient(system_database_url="postgresql://postgres@127.0.0.1:9/none").list_workflows()
        see("client on an unreachable server", "connected")
    except Exception:
        see("client on an unreachable server", "raised")
    see("failed within 15 s", time.monotonic() - started < 15)
    report()
