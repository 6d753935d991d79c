"""DBOS's async web examples on a real FastAPI app, unchanged but for the import line: a
handler that is itself an async workflow, and handlers that start an async workflow in the
background and await its result later (the README's tour shows the same)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import wait_until
from runtime import DBOS


@pytest.fixture
def web_dbos(sys_url):
    DBOS.destroy(destroy_registry=True)
    app = FastAPI()
    DBOS(config={"name": "web-shop", "system_database_url": sys_url, "executor_id": "web-1"}, fastapi=app)
    yield app
    DBOS.destroy(destroy_registry=True)


def test_an_async_handler_that_is_a_workflow(web_dbos, db):
    app = web_dbos

    @DBOS.step()
    async def fetch_user_step(user_id: str) -> str:
        await asyncio.sleep(0)
        return f"User {user_id}"

    @app.get("/user/{user_id}")
    @DBOS.workflow()
    async def get_user(user_id: str) -> dict:
        user_data = await fetch_user_step(user_id)
        return {"user": user_data, "workflow_id": DBOS.workflow_id}

    with TestClient(app) as client:  # its lifespan launches DBOS
        first = client.get("/user/7", headers={"dbos-idempotency-key": "user-7"})
        again = client.get("/user/7", headers={"dbos-idempotency-key": "user-7"})
    assert first.status_code == 200, first.text
    assert first.json() == {"user": "User 7", "workflow_id": "user-7"}
    assert again.json() == first.json()  # the same workflow: its recorded result
    status, name = db.execute("SELECT status, name FROM dbos.workflow_status WHERE workflow_uuid = 'user-7'").fetchone()
    assert (status, name.rsplit(".", 1)[-1]) == ("SUCCESS", "get_user")  # named by its __qualname__
    steps = db.execute("SELECT function_id, function_name FROM dbos.operation_outputs WHERE workflow_uuid = 'user-7'").fetchall()
    assert [(fid, name.rsplit(".", 1)[-1]) for fid, name in steps] == [(1, "fetch_user_step")]


def test_a_handler_starts_an_async_workflow_that_outlives_the_request(web_dbos, db):
    app = web_dbos
    released = asyncio.Event()

    @DBOS.step()
    async def ship(order_id: str) -> str:
        return f"shipped {order_id}"

    @DBOS.workflow()
    async def fulfil(order_id: str) -> str:
        await DBOS.sleep_async(0.1)
        await released.wait()  # still running after the handler that started it returned
        return await ship(order_id)

    @app.post("/orders/{order_id}")
    async def place(order_id: str) -> dict:
        handle = await DBOS.start_workflow_async(fulfil, order_id)
        return {"workflow_id": handle.get_workflow_id()}

    @app.post("/release")
    async def release() -> dict:
        released.set()
        return {}

    @app.get("/orders/{workflow_id}")
    async def result(workflow_id: str) -> dict:
        handle = await DBOS.retrieve_workflow_async(workflow_id)
        status = await handle.get_status()
        return {"status": status.status, "result": await handle.get_result() if status.status == "SUCCESS" else None}

    with TestClient(app) as client:
        workflow_id = client.post("/orders/o-1").json()["workflow_id"]
        assert client.get(f"/orders/{workflow_id}").json() == {"status": "PENDING", "result": None}
        client.post("/release")
        for _ in range(500):  # bounded: each request is a round trip to the app's loop
            body = client.get(f"/orders/{workflow_id}").json()
            if body["status"] == "SUCCESS":
                break
    assert body == {"status": "SUCCESS", "result": "shipped o-1"}
    steps = db.execute("SELECT function_name FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id", (workflow_id,))
    assert [name for (name,) in steps] == ["DBOS.sleep", "test_a_handler_starts_an_async_workflow_that_outlives_the_request.<locals>.ship"]


def test_the_readme_async_tour_runs(sys_url, db, monkeypatch):
    """The README's async example, run as written (its database named by the environment)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    after = readme.split("<!-- async-tour: tests/test_async_web.py runs this block -->", 1)[1]
    source = after.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("PGFLEET_SYSTEM_DATABASE_URL", sys_url)
    DBOS.destroy(destroy_registry=True)
    namespace: dict[str, object] = {"__name__": "readme_async_tour"}
    try:
        exec(compile(source, "README.md", "exec"), namespace)
        app = namespace["app"]
        with TestClient(app) as client:  # type: ignore[arg-type]
            workflow_id = client.post("/orders/o-9").json()["workflow_id"]
            assert client.get(f"/orders/{workflow_id}/status").json() == {"status": "charged"}
            # The event is set just before the sleep's checkpoint: leave (and shut down) only
            # once the workflow reached it, or a loaded machine shuts down in between.
            wait_until(lambda: db.execute("SELECT 1 FROM dbos.operation_outputs WHERE workflow_uuid = %s AND function_name = 'DBOS.sleep'",
                                          (workflow_id,)).fetchone(), what="the tour's sleep checkpoint")
        steps = db.execute("SELECT function_name FROM dbos.operation_outputs WHERE workflow_uuid = %s ORDER BY function_id", (workflow_id,))
        assert [name for (name,) in steps] == ["charge", "DBOS.setEvent", "DBOS.sleep"]
    finally:
        DBOS.destroy(destroy_registry=True)
