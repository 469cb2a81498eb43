"""What the web tests share: waiting for a job through the API, as a client would."""

from __future__ import annotations

import time
from typing import Any


def wait_job(client: Any, job_id: str, timeout: float = 60) -> dict:
    """Poll a job's status until it is done, failed or cancelled (an AssertionError after ``timeout``)."""
    deadline = time.time() + timeout
    status: dict = {}
    while time.time() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {status}")
