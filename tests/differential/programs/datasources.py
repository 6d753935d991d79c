"""SQLAlchemyDatasource (DBOS 2.22+): @ds.transaction steps, their outputs table, retries (#10 item 2)."""

import sqlalchemy as sa
from dbos import DBOS, SetWorkflowID, SQLAlchemyDatasource
from observe import app_database_url, attempt, database_url, report, see

DBOS(config={"name": "diff-datasources", "system_database_url": database_url()})
ds = SQLAlchemyDatasource.create(app_database_url(), schema="ds_outputs")
with ds.engine.begin() as conn:
    conn.execute(sa.text("CREATE TABLE accounts (name text PRIMARY KEY, balance int NOT NULL)"))
runs = {"deposit": 0, "conflicted": 0, "failing": 0}


@ds.transaction()
def deposit(name, amount):
    runs["deposit"] += 1
    ds.sql_session().execute(
        sa.text("INSERT INTO accounts VALUES (:name, :amount) ON CONFLICT (name) DO UPDATE SET balance = accounts.balance + :amount"),
        {"name": name, "amount": amount},
    )
    return ds.sql_session().execute(sa.text("SELECT balance FROM accounts WHERE name = :name"), {"name": name}).scalar()


@ds.transaction(name="isolation_of", isolation_level="REPEATABLE READ")
def isolation():
    return [ds.sql_session().execute(sa.text("SHOW transaction_isolation")).scalar(), DBOS.step_id]


@ds.transaction
def default_isolation():
    return ds.sql_session().execute(sa.text("SHOW transaction_isolation")).scalar()


@ds.transaction()
def conflicted():
    runs["conflicted"] += 1
    if runs["conflicted"] == 1:
        ds.sql_session().execute(sa.text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$"))
    return runs["conflicted"]


@ds.transaction()
def failing():
    runs["failing"] += 1
    ds.sql_session().execute(sa.text("INSERT INTO accounts VALUES ('mallory', 1000)"))
    raise ValueError("rolled back")


@ds.transaction()
def commits_itself():
    ds.sql_session().execute(sa.text("SELECT 1"))
    ds.sql_session().commit()


def plain_function(x):
    return ds.sql_session().execute(sa.text("SELECT :x * 2"), {"x": x}).scalar()


@DBOS.workflow()
def banking():
    results = [deposit("alice", 10), deposit("alice", 5), isolation(), default_isolation(), conflicted()]
    results.append(ds.run_tx_step({"name": "doubled"}, plain_function, 21))
    try:
        failing()
    except ValueError as exc:
        results.append(repr(exc))
    try:
        commits_itself()
    except Exception as exc:
        results.append([type(exc).__name__, str(exc)])
    return results


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("ds-1"):
        see("workflow", banking())
    see("runs", dict(runs))
    with SetWorkflowID("ds-1"):
        see("replayed", banking())
    see("runs after replay", dict(runs))
    see("outside a workflow", deposit("bob", 7))
    attempt("sql_session outside a transaction", ds.sql_session)
    with ds.engine.connect() as conn:
        see("accounts", [list(r) for r in conn.execute(sa.text("SELECT name, balance FROM accounts ORDER BY name"))])
        see("outputs", [list(r) for r in conn.execute(sa.text(
            "SELECT workflow_id, step_id, output IS NOT NULL, error IS NOT NULL, serialization FROM ds_outputs.datasource_outputs"
            " ORDER BY workflow_id, step_id"
        ))])
    see("steps", [[s["function_id"], s["function_name"], s["output"], repr(s["error"])] for s in DBOS.list_workflow_steps("ds-1")])
    DBOS.destroy()
    report()
