"""Every operation of the JSON API, fuzzed by schemathesis from the OpenAPI document: valid and
invalid paths, query strings and bodies (the generation modes "positive" and "negative"), with and
without the bearer token. No answer is a 500, and every answer is one the document lists, with
the content type and body it documents.

FUZZ_EXAMPLES (default 25) bounds the examples per operation; CI derandomizes (tests/conftest.py's
"ci" Hypothesis profile), so a failure there reproduces on the same commit."""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.conftest import FIGURES

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
def test_every_operation_answers_as_documented(case, fuzz_tokens):  # type: ignore[no-untyped-def]
    FIGURES.ran = True
    FIGURES.operations.add(case.operation.label)
    phase = getattr(case.meta, "phase", None)
    parameter = str(getattr(getattr(phase, "data", None), "parameter", None) or "")
    if parameter.lower() == "authorization":
        headers = None  # a case about the token itself (none, a bad one) keeps its own
    elif case.operation.label == "DELETE /api/v1/auth/tokens/current":
        headers = fuzz_tokens.fresh()  # it revokes the token it is called with
    else:
        headers = fuzz_tokens.headers
    FIGURES.cases += 1
    try:
        response = case.call(headers=headers)
    except BaseException:  # the app raised (the test client propagates it): a 500 in production
        FIGURES.server_errors += 1
        raise
    FIGURES.statuses[response.status_code] += 1
    if response.status_code >= 500:
        FIGURES.server_errors += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except BaseException:  # schemathesis' FailureGroup is a BaseExceptionGroup; re-raised below
        if response.status_code < 500:
            FIGURES.schema_mismatches += 1
        raise
