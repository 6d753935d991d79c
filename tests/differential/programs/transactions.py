"""@DBOS.transaction with SQLAlchemy sessions, isolation levels and retries (#10 item 2)."""

import sqlalchemy as sa
from dbos import DBOS, SetWorkflowID
from observe import app_database_url, attempt, database_url, report, see

DBOS(config={"name": "diff-transactions", "system_database_url": database_url(), "application_database_url": app_database_url()})
engine = sa.create_engine(app_database_url().replace("postgresql://", "postgresql+psycopg://", 1))
with engine.begin() as conn:
    conn.execute(sa.text("CREATE TABLE greetings (name text PRIMARY KEY, count int NOT NULL)"))


@DBOS.transaction()
def greet(name):
    DBOS.sql_session.execute(
        sa.text("INSERT INTO greetings VALUES (:name, 1) ON CONFLICT (name) DO UPDATE SET count = greetings.count + 1"), {"name": name}
    )
    return DBOS.sql_session.execute(sa.text("SELECT count FROM greetings WHERE name = :name"), {"name": name}).scalar()


@DBOS.transaction(isolation_level="REPEATABLE READ")
def isolation():
    return DBOS.sql_session.execute(sa.text("SHOW transaction_isolation")).scalar()


@DBOS.transaction()
def default_isolation():
    return DBOS.sql_session.execute(sa.text("SHOW transaction_isolation")).scalar()


@DBOS.transaction()
def commits_itself():
    DBOS.sql_session.commit()


@DBOS.transaction()
def fails(name):
    DBOS.sql_session.execute(sa.text("INSERT INTO greetings VALUES (:name, 1)"), {"name": name})
    raise ValueError("rolled back")


@DBOS.workflow()
def workflow():
    return [greet("alice"), greet("alice"), isolation(), default_isolation()]


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("tx-1"):
        see("workflow", workflow())
    with SetWorkflowID("tx-1"):
        see("replayed", workflow())
    see("greet outside a workflow", greet("bob"))
    attempt("commit inside a transaction", commits_itself)
    attempt("failing transaction", lambda: fails("carol"))
    with engine.connect() as conn:
        see("rows", [list(r) for r in conn.execute(sa.text("SELECT name, count FROM greetings ORDER BY name"))])
    see("steps", [[s["function_id"], s["function_name"], s["output"]] for s in DBOS.list_workflow_steps("tx-1")])
    DBOS.destroy()
    report()
