"""schemathesis against the served OpenAPI document (issue 8 item 7), bounded to seconds.

One real `fristed serve`; every documented operation gets a few generated
requests, valid and invalid (hypothesis strategies from schemathesis, run
here directly: schemathesis 4.32's `schemathesis.pytest.from_fixture` fails
under pytest 9 with "'Function' object has no attribute '_nodeid'"). No answer may be a
5xx, and every answer must match the document: status, content type, body
schema and headers (a 405 carries `Allow`). Staff operations are called
without a session, as a stranger would: the document says what they answer then.
"""

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.support import LiveServer

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.allow_header_conformance,
    checks.negative_data_rejection,
]
EXAMPLES = 4


def test_every_answer_matches_the_document_and_none_is_a_server_error(live_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                case.call_and_validate(checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                continue  # no invalid request exists (an operation without parameters or body)
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
