"""The authorization matrix: every route × method of the app (pages and API, from app.url_map) ×
every role × the actor's own scope and another scope, against the reviewed table in
tests/e2e/authz_matrix.csv.

The actor for a role is scope A's person with that role (the admin, or nobody for anonymous);
"own" cells put scope A's objects in the URL, "other" cells scope B's (tests/e2e/authz_world.py
builds the two scopes and resolves each URL parameter by name). A route without parameters is
one request whose answer fills both cells. Pages are asked with the session cookie of a real
login, the API with a bearer token; the body is empty (an empty form, `{}`) except for the few
actions listed in authz_world.BODIES. Each answer is one class: login, deny, hidden, ok, error.

Every cell starts from the same world: each request runs in a SAVEPOINT of the test's outer
transaction, rolled back after it (a refund does reach localstripe; the database forgets it).

The test fails on any cell that differs from the table, any route × method with no row, any row
with no route, any 500 and any URL parameter without a resolver. It records `authz_cells` and
`authz_leaks` (the cells compared and those that differ), which tests/conftest.py prints at the
end of the run. `pytest tests/e2e/test_authz_matrix.py --authz-write` rewrites the table from
what the app answers now: review the diff before committing it (`python -m tests.e2e.authz_world`
prints a summary per role).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from marketplace.api import SWAGGER_UI_FILES
from services import accounts
from tests.conftest import TEST_PASSWORD, login, reset_limiter
from tests.e2e.authz_world import (
    BODIES,
    COLUMNS,
    QUERIES,
    ROLES,
    TABLE,
    UPLOADS,
    AuthzWorld,
    KeptFilesStorage,
    Row,
    UnresolvedParameter,
    build_authz_world,
    classify,
    read_table,
    resolve,
    summary,
    table_text,
)

SKIPPED_METHODS = {"HEAD", "OPTIONS"}
BODY_METHODS = {"POST", "PUT", "PATCH"}
PARAMETER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@pytest.fixture()
def world(session, app, make_user, gateway, checkout_settings, tmp_path, monkeypatch) -> AuthzWorld:  # type: ignore[no-untyped-def]
    storage = KeptFilesStorage(tmp_path / "media")
    monkeypatch.setitem(app.extensions, "media_storage", storage)
    return build_authz_world(
        session,
        make_user=make_user,
        gateway=gateway,
        settings=checkout_settings,
        storage=storage,
        swagger_files=SWAGGER_UI_FILES,
    )


@dataclass(frozen=True)
class Request:
    method: str
    rule: str
    endpoint: str
    role: str
    scopes: tuple[str, ...]  # the cells its answer fills: ("own",), ("other",) or both
    url: str
    body: dict[str, Any] | None  # authz_world.BODIES, made when planning (no ORM access later)


def routes(app) -> list[tuple[str, Any]]:  # type: ignore[no-untyped-def]
    """(method, rule) for every route of the app, HEAD and OPTIONS aside."""
    return sorted(
        ((m, r) for r in app.url_map.iter_rules() for m in r.methods - SKIPPED_METHODS),
        key=lambda mr: (mr[1].rule, mr[0]),
    )


def plan(app, world: AuthzWorld) -> tuple[list[Request], list[str]]:  # type: ignore[no-untyped-def]
    """Every request to send, and the parameters nobody resolves."""
    requests: list[Request] = []
    unresolved: list[str] = []
    scope_of = {"own": world.scopes["A"], "other": world.scopes["B"]}
    for method, rule in routes(app):
        names = PARAMETER.findall(rule.rule)
        make_body = BODIES.get(rule.endpoint) if method in BODY_METHODS else None
        per_scope = bool(names) or make_body is not None
        for role in ROLES:
            for label in ("own", "other") if per_scope else ("own",):
                try:
                    values = {
                        n: resolve(n, scope_of[label], endpoint=rule.endpoint, role=role, rule=rule.rule)
                        for n in names
                    }
                except UnresolvedParameter as exc:
                    unresolved.append(str(exc))
                    continue
                url = PARAMETER.sub(lambda m, v=values: v[m.group(1)], rule.rule)  # type: ignore[misc]
                if rule.endpoint in QUERIES:
                    url += "?" + QUERIES[rule.endpoint]
                cells = (label,) if per_scope else ("own", "other")
                body = make_body(scope_of[label]) if make_body is not None else None
                requests.append(Request(method, rule.rule, rule.endpoint, role, cells, url, body))
    return requests, sorted(set(unresolved))


def credentials(app, session: Session, world: AuthzWorld) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """role → (the Cookie header of a logged-in browser, a bearer token), for scope A's people."""
    found: dict[str, tuple[str, str]] = {"anonymous": ("", "")}
    policy = accounts.AuthPolicy()
    names = (app.config["SESSION_COOKIE_NAME"], app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    for (role, scope), user in world.users().items():
        if scope != "A":
            continue
        client = app.test_client()
        reset_limiter()  # seven logins in a row from one address
        resp = login(client, user.phone)
        assert resp.status_code == 302, (role, resp.status_code)
        cookies = "; ".join(
            f"{name}={cookie.value}" for name in names if (cookie := client.get_cookie(name)) is not None
        )
        secret, _token = accounts.issue_api_token(
            session, phone=user.phone, password=TEST_PASSWORD, policy=policy
        )
        found[role] = (cookies, secret)
    return found


def send(app, client, req: Request, creds: tuple[str, str]):  # type: ignore[no-untyped-def]
    cookie, token = creds
    headers: dict[str, str] = {}
    # A file is a stream, read by the request: each request gets its own copy.
    body = {
        k: (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v
        for k, v in (req.body or {}).items()
    }
    kwargs: dict[str, Any] = {}
    if req.method in BODY_METHODS:
        if req.endpoint in UPLOADS:
            kwargs.update(data=body, content_type="multipart/form-data")
        elif req.rule.startswith("/api/"):
            kwargs["json"] = body
        else:
            kwargs["data"] = body
    if req.rule.startswith("/api/"):
        if token:
            headers["Authorization"] = f"Bearer {token}"
    elif cookie:
        headers["Cookie"] = cookie
    return client.open(req.url, method=req.method, headers=headers, **kwargs)


def observe(app, session: Session, world: AuthzWorld) -> tuple[dict[Row, dict[str, str]], list[str]]:  # type: ignore[no-untyped-def]
    """The class of every cell, each request on a fresh copy of the world; and the 500s."""
    requests, unresolved = plan(app, world)
    assert not unresolved, "URL parameters without a resolver:\n" + "\n".join(unresolved)
    creds = credentials(app, session, world)
    session.commit()  # the world is done: the test's session touches nothing while cells run
    connection = session.bind
    db = app.extensions["database"]
    client = app.test_client(use_cookies=False)
    observed: dict[Row, dict[str, str]] = {}
    errors: list[str] = []
    try:
        for req in requests:
            cell_point = connection.begin_nested()  # type: ignore[union-attr]
            cell = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
            db.lend_session(cell)
            reset_limiter()
            try:
                resp = send(app, client, req, creds[req.role])
                resp.close()
                kind = classify(resp.status_code, resp.headers.get("Location", ""))
                if kind == "error":
                    errors.append(f"{req.method} {req.rule} {req.role} ({req.url}): {resp.status_code}")
            finally:
                db.lend_session(session)
                cell.close()
                cell_point.rollback()
            row = observed.setdefault((req.method, req.rule), {})
            for scope in req.scopes:
                row[f"{req.role}:{scope}"] = kind
    finally:
        db.lend_session(session)
    return observed, errors


Table = dict[Row, dict[str, str]]


def compare(table: Table, observed: Table) -> tuple[int, list[str], list[str]]:
    """(cells compared, cells that differ as 'METHOD rule role:scope expected X got Y', other problems)."""
    cells = 0
    differ: list[str] = []
    problems: list[str] = []
    for row in sorted(observed, key=lambda r: (r[1], r[0])):
        if row not in table:
            problems.append(f"{row[0]} {row[1]}: no row in {TABLE.name} (add one, or run with --authz-write)")
            continue
        for column in COLUMNS:
            cells += 1
            expected, got = table[row][column], observed[row][column]
            if expected != got:
                differ.append(f"{row[0]} {row[1]} {column} expected {expected} got {got}")
    for row in sorted(set(table) - set(observed), key=lambda r: (r[1], r[0])):
        problems.append(f"{row[0]} {row[1]}: a row in {TABLE.name} for a route the app does not have")
    return cells, differ, problems


def test_every_route_answers_every_role_as_the_table_says(app, session, world, request, record_property):  # type: ignore[no-untyped-def]
    observed, errors = observe(app, session, world)
    assert all(len(cells) == len(COLUMNS) for cells in observed.values())
    if request.config.getoption("--authz-write"):
        _cells, changed, _problems = compare(read_table(), observed)
        print(f"\n--authz-write: {len(changed)} cells changed in {TABLE.name}:\n  " + "\n  ".join(changed))
        TABLE.write_text(table_text(observed), encoding="utf-8")
    table = read_table()
    cells, differ, problems = compare(table, observed)
    record_property("authz_cells", cells)
    record_property("authz_leaks", len(differ))
    print(f"\n{len(observed)} route × method rows; observed:\n{summary(observed)}")
    report = []
    if errors:
        report.append(f"{len(errors)} answers were 500 (always a failure):\n  " + "\n  ".join(errors))
    if problems:
        report.append("\n".join(problems))
    if differ:
        report.append(f"{len(differ)} of {cells} cells differ from {TABLE.name}:\n  " + "\n  ".join(differ))
    assert not report, "\n\n".join(report)


def test_the_comparison_names_every_difference():
    row = {c: "deny" for c in COLUMNS}
    table = {("GET", "/a"): dict(row), ("GET", "/gone"): dict(row)}
    observed = {("GET", "/a"): {**row, "dc_staff:other": "ok"}, ("POST", "/new"): dict(row)}
    cells, differ, problems = compare(table, observed)
    assert cells == len(COLUMNS)
    assert differ == ["GET /a dc_staff:other expected deny got ok"]
    assert problems == [
        "POST /new: no row in authz_matrix.csv (add one, or run with --authz-write)",
        "GET /gone: a row in authz_matrix.csv for a route the app does not have",
    ]


def test_answers_are_classed_by_status_and_login_redirects():
    assert classify(401) == classify(302, "/auth/login?next=%2Forders%2F") == "login"
    assert (classify(403), classify(404), classify(500)) == ("deny", "hidden", "error")
    assert {classify(s) for s in (200, 201, 204, 400, 409, 422, 429)} == {"ok"}
    assert classify(302, "/orders/123") == "ok"


def test_a_route_with_an_unknown_parameter_asks_for_a_resolver():
    with pytest.raises(UnresolvedParameter, match=r"add a resolver for <harvest_id>"):
        resolve("harvest_id", None, endpoint="x.y", role="buyer", rule="/harvests/<int:harvest_id>")  # type: ignore[arg-type]


def test_the_table_is_sorted_and_has_every_column():
    text = TABLE.read_text(encoding="utf-8")
    table = read_table()
    assert table_text(table) == text  # sorted and in the writer's format: diffs stay readable
    allowed = {"login", "deny", "hidden", "ok"}
    assert all(set(cells.values()) <= allowed for cells in table.values())
