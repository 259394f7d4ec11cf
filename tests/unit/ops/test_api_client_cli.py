"""`gateway partner api-client add|list|revoke`, run as a user would: the
secret printed once and accepted by the token endpoint, never stored clear,
a revoked client refused, mistakes answered with a reason."""
from __future__ import annotations

import json
import sqlite3

from fastapi.testclient import TestClient

from conftest import gateway_cli
from gateway.channels.flow_api.app import create_app


def test_a_client_made_listed_and_revoked_from_the_command_line(home):
    assert gateway_cli("partner", "add", "editeur-x", home=home).returncode == 0
    r = gateway_cli("partner", "api-client", "add", "editeur-x", "--json", home=home)
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert set(made) == {"client_id", "client_secret"} and len(made["client_secret"]) >= 32
    with sqlite3.connect(home.home / "gateway.db") as db:  # kept only as a hash
        dump = "\n".join(db.iterdump())
    assert made["client_id"] in dump and made["client_secret"] not in dump
    http = TestClient(create_app(home))
    form = {"grant_type": "client_credentials", "client_id": made["client_id"], "client_secret": made["client_secret"]}
    ok = http.post("/auth/token", data=form)
    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer" and ok.json()["expires_in"] > 0

    listed = gateway_cli("partner", "api-client", "list", home=home).stdout
    assert made["client_id"] in listed and "editeur-x" in listed and "active" in listed
    r = gateway_cli("partner", "api-client", "revoke", made["client_id"], home=home)
    assert r.returncode == 0 and "revoked" in r.stdout
    assert "revoked" in gateway_cli("partner", "api-client", "list", home=home).stdout
    assert http.post("/auth/token", data=form).status_code == 401


def test_mistakes_are_refused_with_a_reason(home, tmp_path):
    r = gateway_cli("partner", "api-client", "add", "nobody", home=home)
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = gateway_cli("partner", "api-client", "revoke", "gwc_unknown", home=home)
    assert r.returncode == 2 and "error:" in r.stderr
    r = gateway_cli("partner", "api-client", "list", home=str(tmp_path / "not-a-home"))
    assert r.returncode == 2 and "not a gateway home" in r.stderr
    assert not (tmp_path / "not-a-home").exists()
