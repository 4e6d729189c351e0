"""Property-based tests of the whole API from its OpenAPI definition (/api) with schemathesis: bounded
(20 examples per operation, derandomized), in-process over ASGI against create_app(settings), as an
admin (every route runs its full code path). No 5xx; status codes, content types and bodies conform to
what the definition declares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from twin.settings import Settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(sec_settings: Settings) -> Iterator[schemathesis.schemas.BaseSchema]:
    from api.app import create_app

    app = create_app(sec_settings)
    yield schemathesis.openapi.from_asgi("/api", app)
    schemathesis_asgi.shutdown_lifespans()  # closes the app's pools


def test_api_conforms(api_schema: schemathesis.schemas.BaseSchema, keys: dict[str, str]) -> None:
    # Driven by hand per operation (schemathesis' pytest loader does not run under pytest 9).
    headers = {"X-API-Key": keys["admin"]}
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=20, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all, then report
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
