"""The fuzz tier: schemathesis against /api/openapi.json (make test-fuzz, SQLite only).

One world for every operation (tests/factories.py's market and network), bearer tokens of a user
who is admin, buyer and farmer at once so that authorised paths run too, and the figures the
issue asks for printed at the end of the run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis

from domain import Role
from services import accounts
from tests.conftest import TEST_PASSWORD
from tests.factories import RoleGrantFactory


@dataclass
class FuzzFigures:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    server_errors: int = 0
    schema_mismatches: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    ran: bool = False


FIGURES = FuzzFigures()


class Tokens:
    """Bearer tokens of the fuzzing user: one for every operation, and a throw-away one for the
    operation that revokes the token it is called with (DELETE /auth/tokens/current)."""

    def __init__(self, session, user, policy) -> None:  # type: ignore[no-untyped-def]
        self._session, self._user, self._policy = session, user, policy
        self.headers = self.fresh()

    def fresh(self) -> dict[str, str]:
        secret, _token = accounts.issue_api_token(
            self._session, phone=self._user.phone, password=TEST_PASSWORD, policy=self._policy
        )
        return {"Authorization": f"Bearer {secret}"}


@pytest.fixture()
def fuzz_tokens(session, market, net, policy) -> Tokens:  # type: ignore[no-untyped-def]
    """Tokens of a farmer with listings who is also admin and buyer."""
    user = market.shop.meixian_farmer
    for role in (Role.ADMIN, Role.BUYER):
        RoleGrantFactory(user_id=user.id, role=role)
    session.commit()
    return Tokens(session, user, policy)


@pytest.fixture()
def api_schema(app):  # type: ignore[no-untyped-def]
    """The OpenAPI document as the app serves it, requests going straight to the app (WSGI)."""
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not FIGURES.ran:
        return
    terminalreporter.write_line(f"fuzz_operations: {len(FIGURES.operations)}")
    terminalreporter.write_line(f"fuzz_cases: {FIGURES.cases}")
    terminalreporter.write_line(f"fuzz_server_errors: {FIGURES.server_errors}")
    terminalreporter.write_line(f"fuzz_schema_mismatches: {FIGURES.schema_mismatches}")
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(FIGURES.statuses.items()))
    terminalreporter.write_line(f"fuzz_statuses: {statuses}")
