"""The local stack's Prefect API refuses calls without the stack's credential."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.stack_client import StackClient

pytestmark = pytest.mark.e2e


def test_an_unauthenticated_api_call_is_refused_and_the_credential_is_accepted(
    stack: StackClient,
) -> None:
    api = stack.env["PREFECT_API_URL"]
    user, password = stack.env["PREFECT_API_AUTH_STRING"].split(":", 1)
    assert len(password) >= 24

    anonymous = httpx.post(f"{api}/deployments/filter", json={}, timeout=10)
    wrong = httpx.post(f"{api}/deployments/filter", json={}, auth=(user, "guess"), timeout=10)
    assert anonymous.status_code == wrong.status_code == httpx.codes.UNAUTHORIZED
    # Reading blocks (the credentials of CLOVA, Claude and the backend) is refused too.
    blocks = httpx.post(f"{api}/block_documents/filter", json={}, timeout=10)
    assert blocks.status_code == httpx.codes.UNAUTHORIZED

    authorised = httpx.post(f"{api}/deployments/filter", json={}, auth=(user, password), timeout=10)
    assert authorised.status_code == httpx.codes.OK
    assert "process-video-local" in {deployment["name"] for deployment in authorised.json()}
    # Probes stay open: a load balancer or kubelet checks health without the credential.
    assert httpx.get(f"{api}/health", timeout=10).status_code == httpx.codes.OK
    with stack.prefect() as client:
        assert client.read_deployment_by_name("process-video/process-video-local")
