"""Schemathesis against a live `runserver_gym`'s /openapi.json (issue 8): every operation with
generated valid and invalid requests, then chains of linked operations (the stateful phase), with and
without a token, on the suite's database. The checks: no 5xx, every status documented, every answer
in its schema and its content type documented."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

TOKEN = "fuzz-token"
ARGS = ["--env", "CartPole-v1", "--allow-env", "FrozenLake-v1", "--num-episodes", "3",
        "--max-steps-per-episode", "20", "--max-instances", "16"]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
# A fixed seed and bounded sizes: the same requests on every run, a few minutes in all.
FUZZ = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))
STATEFUL = settings(FUZZ, max_examples=25, stateful_step_count=10)


@pytest.fixture(params=["tokenless", "token"])
def live(request, spawn):
    """A runserver_gym process on the suite's database (SQLite, or PostgreSQL with DATABASE_URL), its
    schema as served, and the headers its clients send."""
    headers = {"Authorization": f"Bearer {TOKEN}"} if request.param == "token" else {}
    server = spawn(ARGS + (["--token", TOKEN] if headers else []))
    return schemathesis.openapi.from_url(f"{server.base}/openapi.json", headers=headers, timeout=30), headers


def test_every_operation_answers_valid_and_invalid_requests_as_its_openapi_promises(live):
    schema, headers = live
    operations, failures, requests = 0, [], [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ
            def call(case):
                requests[0] += 1
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be generated"
                continue  # an operation without parameters or body: no invalid request to make
            except FailureGroup as exc:  # every operation's failures are reported, not only the first one's
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(f"\nschemathesis: {operations} operations, {requests[0]} requests, {len(failures)} failures")
    assert operations > 30 and not failures, "\n\n".join(failures)


def test_chains_of_linked_operations_answer_as_the_openapi_promises(live):
    schema, headers = live
    calls = [0]

    class Machine(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            calls[0] += 1
            return {"headers": headers, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Machine.run(settings=STATEFUL)
    print(f"\nschemathesis stateful: {schema.statistic.transitions.total} links, {calls[0]} requests")
