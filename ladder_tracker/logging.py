"""Request and task correlation ids for log lines.

Every log line carries `context_id`: `req:<id>` inside a request (the client's X-Request-ID
when it sends a sane one, else a fresh uuid, echoed back in the response) or `task:<id>`
inside a Celery task. grep for it to follow one request or one task.
"""

import contextvars
import logging
import re
import uuid

from django.core.signals import request_finished

context_id: contextvars.ContextVar[str] = contextvars.ContextVar("context_id", default="-")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context_id = context_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Reset on request_finished, not here: Django logs the response status
        # (django.request) after the middleware chain returns, and that line is this request's.
        context_id.set(f"req:{request_id}")
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _clear_context_id(**_kwargs) -> None:
    context_id.set("-")


request_finished.connect(_clear_context_id, dispatch_uid="ladder_tracker.clear_context_id")
