"""An async workflow of three async datasource transactions, killed inside the second one's body
and recovered by another process (tests/test_async_datasource.py).

    async_datasource_app.py start SYS_URL APP_URL LEDGER      run "ads-crash", hang in the second body
    async_datasource_app.py recover SYS_URL APP_URL LEDGER    launch (recovering it) and print its result

Every body appends "<name> <pid>" to LEDGER when it starts, so the test can tell which bodies
ran in which process. The datasource's engine is the default one (a pool), as a user makes it.
"""

import asyncio
import os
import sys

import sqlalchemy as sa

from runtime import DBOS, AsyncSQLAlchemyDatasource, SetWorkflowID

mode, sys_url, app_url, ledger = sys.argv[1:5]


def note(what: str) -> None:
    with open(ledger, "a") as f:
        f.write(f"{what} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


DBOS(config={"name": "async-datasource-app", "system_database_url": sys_url})
ds = asyncio.run(AsyncSQLAlchemyDatasource.create(app_url))


async def add(name: str) -> str:
    note(name)
    await ds.sql_session().execute(sa.text("INSERT INTO public.items VALUES (:name)"), {"name": name})
    if mode == "start" and name == "two":
        await asyncio.Event().wait()  # hang here, uncommitted, until SIGKILL
    return name


add_item = ds.transaction(name="add_item")(add)


@DBOS.workflow()
async def adding() -> list[str]:
    return [await add_item("one"), await add_item("two"), await add_item("three")]


DBOS.launch()
if mode == "start":

    async def start() -> None:
        with SetWorkflowID("ads-crash"):
            await adding()

    asyncio.run(start())
else:
    # Recovered at launch (on the executor's background loop, as nobody awaits it here).
    print("ads-crash", DBOS.retrieve_workflow("ads-crash").get_result(), flush=True)
DBOS.destroy()
