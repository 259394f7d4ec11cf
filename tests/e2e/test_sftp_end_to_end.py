"""Through the real service: a partner uploads over SFTP (OpenSSH's client),
the upload becomes a flow only once complete, and the partner downloads the
flow's report over SFTP."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import gateway_cli, reports
from gateway.rules import directory
from invoice_support import COMMUNE_SIRET, ubl_invoice
from sftp_support import ecdsa_key, free_port, listening, openssh_sftp, running_gateway, wait_until

needs_openssh = pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH sftp client not installed")


def add_partner(home, name: str, key) -> None:  # noqa: ANN001
    """`gateway partner add NAME --key FILE.pub`, with the .pub file ecdsa_key wrote."""
    r = gateway_cli("partner", "add", name, "--key", f"{key.path}.pub", home=home)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_openssh
def test_upload_over_sftp_becomes_a_flow_and_the_report_comes_back(home, tmp_path):
    key = ecdsa_key(tmp_path)
    add_partner(home, "ACME", key)
    port = free_port()
    with running_gateway(home, "run", "--sftp-port", str(port)) as gw:
        local = tmp_path / "up"
        local.mkdir()
        (local / "inv-1.xml").write_bytes(ubl_invoice(number="SFTP-1"))
        assert wait_until(lambda: listening(port), timeout=20)
        # the client's own convention: upload under a temporary name, then rename
        res = openssh_sftp(("127.0.0.1", port), "ACME", key,
                           ["put inv-1.xml /inbox/inv-1.xml.part", "rename /inbox/inv-1.xml.part /inbox/inv-1.xml"],
                           cwd=local)
        assert res.returncode == 0, res.stdout + res.stderr
        assert wait_until(lambda: len(reports(home, "ACME")) == 1, timeout=30)
        (rep,) = reports(home, "ACME")
        assert rep["file"] == "inv-1.xml" and rep["state"] == "IN_INTEGRE"
        fid = rep["flow_id"]
        res = openssh_sftp(("127.0.0.1", port), "ACME", key,
                           [f"get /outbox/reports/{fid}.json", f"rm /outbox/reports/{fid}.xml"], cwd=local)
        assert res.returncode == 0, res.stdout + res.stderr
        assert (local / f"{fid}.json").exists()
        assert not (home.reports_dir("ACME") / f"{fid}.xml").exists()
    assert gw.returncode == 0, gw.out
    assert f"listening on 127.0.0.1:{port}" in gw.out


@needs_openssh
def test_a_supplier_and_a_recipient_live_a_piece_over_sftp(home, tmp_path):
    """The supplier uploads an invoice, the recipient fetches it and sends a status back, the supplier
    fetches the status file: every step with OpenSSH's client against `gateway run`."""
    directory.import_files(home, directory.demo_files())
    keys = {}
    for partner in ("fournisseur", COMMUNE_SIRET):
        keys[partner] = ecdsa_key(tmp_path, partner)
        add_partner(home, partner, keys[partner])
    port = free_port()
    local = tmp_path / "local"
    local.mkdir()
    with running_gateway(home, "run", "--sftp-port", str(port)) as gw:
        assert wait_until(lambda: listening(port), timeout=20)
        (local / "FA-SFTP-1.xml").write_bytes(ubl_invoice(number="FA-SFTP-1"))
        res = openssh_sftp(("127.0.0.1", port), "fournisseur", keys["fournisseur"],
                           ["put FA-SFTP-1.xml /inbox/FA-SFTP-1.xml"], cwd=local)
        assert res.returncode == 0, res.stdout + res.stderr
        assert wait_until(lambda: len(reports(home, "fournisseur")) == 1, timeout=30)
        pid = reports(home, "fournisseur")[0]["pieces"][0]["piece_id"]
        # the recipient fetches its invoice and its data, then says the service is done
        (local / "st.json").write_text(json.dumps({"statuses": [{"piece_id": pid, "status": "SERVICE_FAIT"}]}))
        res = openssh_sftp(("127.0.0.1", port), COMMUNE_SIRET, keys[COMMUNE_SIRET],
                           [f"get /outbox/ACHATS/{pid}.pivot.xml", f"get /outbox/ACHATS/{pid}.xml",
                            "put st.json /inbox/st.json"], cwd=local)
        assert res.returncode == 0, res.stdout + res.stderr
        assert (local / f"{pid}.xml").read_bytes() == ubl_invoice(number="FA-SFTP-1")
        assert wait_until(lambda: len(reports(home, COMMUNE_SIRET)) == 1, timeout=30)
        assert reports(home, COMMUNE_SIRET)[0]["state"] == "IN_INTEGRE"
        # the supplier fetches the status file of that change
        res = openssh_sftp(("127.0.0.1", port), "fournisseur", keys["fournisseur"],
                           [f"get /outbox/statuses/{pid}.004.json"], cwd=local)
        assert res.returncode == 0, res.stdout + res.stderr
        assert json.loads((local / f"{pid}.004.json").read_text())["statuses"][0]["status"] == "SERVICE_FAIT"
    assert gw.returncode == 0, gw.out
