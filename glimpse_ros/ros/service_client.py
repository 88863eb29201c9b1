"""Service clients whose responses cannot be lost to late matching (tools and tests).

``wait_for_service`` only says that the *client's* endpoints matched the server's: its request
writer has the server's request reader, its response reader has the server's response writer.
The server's response writer may match the client's response reader later (discovery runs on
each side on its own). rmw_fastrtps waits 100 ms for that match, then writes the response to a
volatile writer with no reader: the response is gone and the call hangs until its timeout.

The remedy used here: send a request until one answer arrives. From then on the server's writer
has the client's reader, and no later response is lost. The request should be free of side
effects (an empty GetParameters, a GetState, a ChangeState with an unknown label); where the
service has none (``std_srvs/Trigger``), every request sent was received and executed, since the
request writer is reliable and matched: :func:`call_until_answered` returns how many were sent.

Both functions poll the request's future: the node must be spun by an executor in another
thread.
"""

from __future__ import annotations

import time
from typing import Any


def call_until_answered(node: Any, client: Any, request: Any, timeout: float = 10.0,
                        resend_s: float = 0.5) -> tuple[Any, int]:
    """Send ``request`` every ``resend_s`` until one is answered; (response, requests sent).

    A request not answered within ``resend_s`` is dropped from the client's pending requests (its
    response went nowhere) and sent again.

    Raises:
        TimeoutError: no answer within ``timeout`` seconds.
    """
    end = time.monotonic() + timeout
    sent = 0
    while time.monotonic() < end:
        future = client.call_async(request)
        sent += 1
        started = time.monotonic()
        while not future.done() and time.monotonic() - started < resend_s:
            time.sleep(0.01)
        if future.done():
            return future.result(), sent
        client.remove_pending_request(future)
    raise TimeoutError(f"{client.srv_name}: no answer to {sent} requests within {timeout} s "
                       f"(node {node.get_name()})")


def matched_client(node: Any, srv_type: Any, name: str, probe: Any, timeout: float = 10.0,
                   resend_s: float = 0.5) -> Any:
    """A client of service ``name`` whose response path is known to be matched.

    ``probe`` (a ``srv_type.Request``) is sent until one answer arrives (see the module text).

    Raises:
        TimeoutError: the service did not appear, or the probe got no answer, within
            ``timeout`` seconds each. The client is destroyed then.
    """
    client = node.create_client(srv_type, name)
    try:
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"no service {name} within {timeout} s")
        call_until_answered(node, client, probe, timeout, resend_s)
    except BaseException:
        node.destroy_client(client)
        raise
    return client


__all__ = ["call_until_answered", "matched_client"]
