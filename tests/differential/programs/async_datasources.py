"""AsyncSQLAlchemyDatasource (DBOS 2.22+): @ds.transaction on async def functions, awaited in
async workflows; their outputs table, retries, replays (#11; programs/datasources.py in async)."""

import asyncio

import sqlalchemy as sa
from dbos import DBOS, AsyncSQLAlchemyDatasource, SetWorkflowID
from observe import app_database_url, attempt, database_url, report, see

DBOS(config={"name": "diff-async-datasources", "system_database_url": database_url()})
runs = {"deposit": 0, "conflicted": 0, "failing": 0}
ds: AsyncSQLAlchemyDatasource = None  # made in main(): create() is a coroutine


async def deposit(name, amount):
    runs["deposit"] += 1
    await ds.sql_session().execute(
        sa.text("INSERT INTO accounts VALUES (:name, :amount) ON CONFLICT (name) DO UPDATE SET balance = accounts.balance + :amount"),
        {"name": name, "amount": amount},
    )
    result = await ds.sql_session().execute(sa.text("SELECT balance FROM accounts WHERE name = :name"), {"name": name})
    return result.scalar()


async def isolation():
    result = await ds.sql_session().execute(sa.text("SHOW transaction_isolation"))
    return [result.scalar(), DBOS.step_id]


async def default_isolation():
    return (await ds.sql_session().execute(sa.text("SHOW transaction_isolation"))).scalar()


async def conflicted():
    runs["conflicted"] += 1
    if runs["conflicted"] == 1:
        await ds.sql_session().execute(sa.text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$"))
    return runs["conflicted"]


async def failing():
    runs["failing"] += 1
    await ds.sql_session().execute(sa.text("INSERT INTO accounts VALUES ('mallory', 1000)"))
    raise ValueError("rolled back")


async def commits_itself():
    await ds.sql_session().execute(sa.text("SELECT 1"))
    await ds.sql_session().commit()


async def plain_function(x):
    return (await ds.sql_session().execute(sa.text("SELECT :x * 2"), {"x": x})).scalar()


def sync_function():
    return 1


def decorate():
    global deposit, isolation, default_isolation, conflicted, failing, commits_itself
    deposit = ds.transaction()(deposit)
    isolation = ds.transaction(name="isolation_of", isolation_level="REPEATABLE READ")(isolation)
    default_isolation = ds.transaction(default_isolation)
    conflicted = ds.transaction()(conflicted)
    failing = ds.transaction()(failing)
    commits_itself = ds.transaction()(commits_itself)


@DBOS.step()
async def step_calling_a_transaction():
    # Inside a step the transaction is a plain one: no position of its own.
    return [await ds.run_tx_step_async({"name": "inner"}, plain_function, 4), DBOS.step_id]


@DBOS.workflow()
async def banking():
    results = [await deposit("alice", 10), await deposit("alice", 5), await isolation(), await default_isolation(), await conflicted()]
    results.append(await ds.run_tx_step_async({"name": "doubled"}, plain_function, 21))
    # Gathered: positions are taken in call order, so each execution numbers them the same.
    results.append(await asyncio.gather(deposit("carol", 1), deposit("dave", 2)))
    results.append(await step_calling_a_transaction())
    try:
        await failing()
    except ValueError as exc:
        results.append(repr(exc))
    try:
        await commits_itself()
    except Exception as exc:
        results.append([type(exc).__name__, str(exc)])
    return results


async def attempt_async(label, make):
    """attempt() for a coroutine: its value, or the class and message of what it raised."""
    try:
        see(label, await make())
    except Exception as exc:
        see(label, ["raised", type(exc).__name__, str(exc)])


async def main():
    global ds
    ds = await AsyncSQLAlchemyDatasource.create(app_database_url(), schema="ds_outputs")
    async with ds.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE accounts (name text PRIMARY KEY, balance int NOT NULL)"))
    decorate()
    DBOS.launch()
    with SetWorkflowID("ads-1"):
        see("workflow", await banking())
    see("runs", dict(runs))
    with SetWorkflowID("ads-1"):
        see("replayed", await banking())
    see("runs after replay", dict(runs))
    see("outside a workflow", await deposit("bob", 7))
    see("outside a workflow, conflicted", await conflicted())
    attempt("sql_session outside a transaction", ds.sql_session)
    attempt("transaction on a sync function", lambda: ds.transaction()(sync_function))
    await attempt_async("run_tx_step_async on a sync function", lambda: ds.run_tx_step_async(None, sync_function))
    see("attributes", [ds.schema, ds.created_engine, type(ds.sessionmaker).__name__])
    async with ds.engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT name, balance FROM accounts ORDER BY name"))
        see("accounts", [list(r) for r in rows])
        rows = await conn.execute(sa.text(
            "SELECT workflow_id, step_id, output IS NOT NULL, error IS NOT NULL, serialization FROM ds_outputs.datasource_outputs"
            " ORDER BY workflow_id, step_id"
        ))
        see("outputs", [list(r) for r in rows])
    await ds.engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
    see("steps", [[s["function_id"], s["function_name"], s["output"], repr(s["error"])] for s in DBOS.list_workflow_steps("ads-1")])
    DBOS.destroy()
    report()
