"""The service replaces a worker that died (killed, out of memory, a crash in
a native library): the flows it held go back to the queue, and the service
goes on with as many workers as configured."""
from __future__ import annotations

import json
import os
import signal

from conftest import drop, report_for, reports
from gateway.runtime.beacon import beacon_dir
from invoice_support import ubl_invoice
from sftp_support import running_gateway, wait_until


def _workers(home) -> dict[str, int]:  # noqa: ANN001
    """Role -> pid of the workers that say they are alive (their /healthz beacons)."""
    out = {}
    for path in beacon_dir(home).glob("*.json"):
        try:
            host_pid_role = json.loads(path.read_text())["who"]
        except (OSError, ValueError, KeyError):
            continue
        _host, pid, role = host_pid_role.rsplit(":", 2)
        if role.startswith("w") and _alive(int(pid)):
            out[role] = int(pid)
    return out


def _alive(pid: int) -> bool:
    try:  # not gone, and not a zombie its parent has yet to reap
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_worker_is_replaced_and_the_service_goes_on(home):
    env = {"GATEWAY_INTAKE_WORKERS": "2", "GATEWAY_VALIDATION_SCHEMATRON": "false"}
    with running_gateway(home, "run", env=env) as gw:
        assert wait_until(lambda: len(_workers(home)) == 2, timeout=60, step=0.2)
        victim = _workers(home)["w0"]
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: _workers(home).get("w0") not in (None, victim), timeout=30, step=0.2)
        for i in range(6):
            drop(home, "ACME", f"after-{i}.xml", ubl_invoice(number=f"SUP-{i}"))
        assert wait_until(lambda: len(reports(home, "ACME")) == 6, timeout=60, step=0.2)
        assert all(report_for(home, "ACME", f"after-{i}.xml")["state"] == "IN_INTEGRE" for i in range(6))
        assert len(_workers(home)) == 2
    assert gw.returncode == 0
    assert "worker gateway-worker-0 stopped (exit status -9); starting another" in gw.out
