"""The client counts the requests it sends by the status code that came back, and its
retries by the status that caused them (what /metrics reports per source)."""

import pytest

from servicenow.client import ConnectionFailedError, ServerError

from .test_client import EMPTY, RATE_LIMITED, closed_port, local_client, server  # noqa: F401

FAILURE = '{"error":{"message":"Internal server error","detail":null},"status":"failure"}'


def test_each_retried_answer_and_the_last_one_are_counted_by_status(server):  # noqa: F811
    server.script = [
        (429, {"Retry-After": "0"}, RATE_LIMITED),
        (503, {}, FAILURE),
        (503, {}, FAILURE),
        (200, {}, EMPTY),
    ]
    client = local_client(server.url, [], backoff_factor=0)

    client.get_page("incident")

    assert dict(client.status_counts) == {"429": 1, "503": 2, "200": 1}
    assert dict(client.retry_counts) == {"429": 1, "503": 2}
    assert sum(client.status_counts.values()) == client.request_count == 4


def test_a_final_failure_is_counted_without_a_retry(server):  # noqa: F811
    server.script = [(502, {}, FAILURE), (500, {}, FAILURE)]
    client = local_client(server.url, [], max_retries=1, backoff_factor=0)

    with pytest.raises(ServerError):
        client.get_page("incident")

    assert dict(client.status_counts) == {"502": 1, "500": 1}
    assert dict(client.retry_counts) == {"502": 1}


def test_requests_without_an_answer_count_as_error():
    client = local_client(f"http://127.0.0.1:{closed_port()}", [], max_retries=2)

    with pytest.raises(ConnectionFailedError):
        client.get_page("incident")

    assert dict(client.status_counts) == {"error": 3}
    assert dict(client.retry_counts) == {"error": 2}
    assert client.request_count == 3
