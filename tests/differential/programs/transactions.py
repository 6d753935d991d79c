"""@DBOS.transaction with SQLAlchemy sessions, isolation levels and retries (#10 item 2)."""

import sqlalchemy as sa
from dbos import DBOS, SetWorkflowID
from observe import app_database_url, attempt, database_url, report, see
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


DBOS(config={"name": "diff-transactions", "system_database_url": database_url(), "application_database_url": app_database_url()})
engine = sa.create_engine(app_database_url().replace("postgresql://", "postgresql+psycopg://", 1))
with engine.begin() as conn:
    conn.execute(sa.text("CREATE TABLE greetings (name text PRIMARY KEY, count int NOT NULL)"))
Base.metadata.create_all(engine)
attempts = {"conflicted": 0, "deadlocked": 0, "failing": 0}


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


@DBOS.transaction()
def rolls_back_itself():
    DBOS.sql_session.execute(sa.text("INSERT INTO greetings VALUES ('dave', 1)"))
    DBOS.sql_session.rollback()


@DBOS.transaction(isolation_level="READ COMMITTED")
def conflicted(code, key):
    # The first attempt fails as a serialization failure (40001) or a deadlock (40P01) would.
    attempts[key] += 1
    if attempts[key] == 1:
        DBOS.sql_session.execute(sa.text(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{code}'; END $$"))
    return [attempts[key], DBOS.sql_session.execute(sa.text("SHOW transaction_isolation")).scalar()]


@DBOS.transaction()
def add_note(text):
    DBOS.sql_session.add(Note(id=1, text=text))  # flushed when the body returns
    return text


@DBOS.transaction()
def duplicate_note():
    DBOS.sql_session.add(Note(id=1, text="again"))
    # Flushed here: DBOS flushes pending objects while writing its output, and takes a unique
    # violation raised there for a conflicting workflow (it then waits for an outcome forever).
    DBOS.sql_session.flush()


@DBOS.transaction()
def failing_counted():
    attempts["failing"] += 1
    raise KeyError("recorded")


@DBOS.workflow()
def workflow():
    return [greet("alice"), greet("alice"), isolation(), default_isolation()]


@DBOS.workflow()
def retried():
    return [conflicted("40001", "conflicted"), conflicted("40P01", "deadlocked"), add_note("orm")]


@DBOS.workflow()
def duplicates():
    try:
        duplicate_note()
    except Exception as exc:
        return type(exc).__name__  # the flush's IntegrityError


@DBOS.workflow()
def fails_once():
    try:
        failing_counted()
    except KeyError as exc:
        return f"caught {exc!r}"


if __name__ == "__main__":
    DBOS.launch()
    with SetWorkflowID("tx-1"):
        see("workflow", workflow())
    with SetWorkflowID("tx-1"):
        see("replayed", workflow())
    see("greet outside a workflow", greet("bob"))
    attempt("commit inside a transaction", commits_itself)
    attempt("failing transaction", lambda: fails("carol"))
    attempt("rollback inside a transaction", rolls_back_itself)
    attempt("sql_session outside a transaction", lambda: DBOS.sql_session)
    with SetWorkflowID("tx-retried"):
        see("retried", retried())
    see("attempts", dict(attempts))
    see("duplicate ORM row", duplicates())
    with SetWorkflowID("tx-fails"):
        see("fails once", fails_once())
    with SetWorkflowID("tx-fails"):
        see("fails once replayed", fails_once())
    see("failing attempts", attempts["failing"])
    with engine.connect() as conn:
        see("rows", [list(r) for r in conn.execute(sa.text("SELECT name, count FROM greetings ORDER BY name"))])
        see("notes", [list(r) for r in conn.execute(sa.text("SELECT id, text FROM notes"))])
    see("steps", [[s["function_id"], s["function_name"], s["output"]] for s in DBOS.list_workflow_steps("tx-1")])
    see("retried steps", [[s["function_id"], s["function_name"], s["output"]] for s in DBOS.list_workflow_steps("tx-retried")])
    see("failed step", [[s["function_name"], repr(s["error"])] for s in DBOS.list_workflow_steps("tx-fails")])
    DBOS.destroy()
    report()
