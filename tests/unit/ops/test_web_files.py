"""A flow's files on the operators' pages: for logged-in operators only,
and only the files the store records for that flow."""
from __future__ import annotations

import base64
import os
import re
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest
from sqlalchemy import update

from browser_support import Served, fill_home
from gateway.ops import operators
from gateway.ops.web import create_app
from gateway.ops.web_files import flow_files, safe_download_name
from gateway.store import db
from gateway.store.outputs import flow_outputs
from gateway.store.repository import Store
from gateway.store.tables import Flow
from test_web import get

LOGIN = ("bob", "a long enough password")


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    yield fill_home(tmp_path_factory.mktemp("files") / "home")
    db.dispose_all()


def test_without_a_login_the_files_are_listed_but_not_served(filled):
    with Served(create_app(filled.settings)) as srv:  # no operator yet: the pages are open, the files are not
        status, _, page = get(srv.url + f"/flows/{filled.lot_flow}")
        assert status == 200 and "log in</a> to download" in page and "/files/" not in page
        assert f'href="/login?next=%2Fflows%2F{filled.lot_flow}"' in page
        for path in ("/files/original", "/files/report.json", f"/files/pivot/{filled.lot_flow}-001"):
            status, headers, _ = get(srv.url + f"/flows/{filled.lot_flow}{path}")
            assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert get(srv.url + "/login?next=/")[0] == 401


def test_an_operator_gets_each_file_with_a_safe_name(filled):
    s = filled.settings
    operators.add(s, *LOGIN)
    try:
        with Served(create_app(s)) as srv:
            status, _, page = get(srv.url + f"/flows/{filled.empty_flow}", auth=LOGIN)
            href = re.search(r'href="(/flows/[^"]+/files/original)"', page).group(1)
            status, headers, body = get(srv.url + href, auth=LOGIN)
            assert status == 200 and body == ""  # the empty file, as received
            name = re.search(r'filename="([^"]+)"', headers["content-disposition"]).group(1)
            assert name == safe_download_name(filled.hostile_name) and re.fullmatch(r"[A-Za-z0-9._-]+", name)
            assert headers["content-disposition"].startswith("attachment;")
            assert "default-src 'none'" in headers["content-security-policy"]
            # back where the login was asked for, never to another site
            opener = urllib.request.build_opener(_NoRedirect)
            for target, where in (("/flows/x", "/flows/x"), ("//evil.example/", "/"), ("https://evil.example", "/")):
                req = urllib.request.Request(srv.url + "/login?next=" + quote(target, safe=""),
                                             headers=_basic(LOGIN))
                with pytest.raises(urllib.error.HTTPError) as e:
                    opener.open(req, timeout=10)
                assert e.value.code == 303 and e.value.headers["location"] == where
    finally:
        operators.remove(s, LOGIN[0])


def test_only_what_the_store_records_for_that_flow_is_served(filled):
    s = filled.settings
    operators.add(s, *LOGIN)
    try:
        with Served(create_app(s)) as srv:
            def status_of(path: str) -> int:
                try:
                    with urllib.request.urlopen(urllib.request.Request(srv.url + path, headers=_basic(LOGIN)),
                                                timeout=30) as r:
                        return r.status
                except urllib.error.HTTPError as e:
                    return e.code

            lot, inv = filled.lot_flow, filled.invoice_flow
            assert status_of(f"/flows/{lot}/files/original") == 200
            # names from a request are never paths
            for bad in ("..%2F..%2Fgateway.toml", "report.json%00", "original%2F..", "report.txt"):
                assert status_of(f"/flows/{lot}/files/{bad}") == 404, bad
            assert status_of(f"/flows/{lot}/files/pivot/..%2F..%2F..%2Fgateway.toml") == 404
            # another flow's pivot or status file is not this flow's
            assert status_of(f"/flows/{lot}/files/pivot/{inv}-001") == 404
            other = flow_outputs(s, inv).status_files[0].id
            assert status_of(f"/flows/{inv}/files/status/{other}") == 200
            assert status_of(f"/flows/{lot}/files/status/{other}") == 404
            # a link the partner left in place of its report is not followed
            report = s.reports_dir("fournisseur") / f"{inv}.json"
            report.unlink()
            os.symlink(s.config_file, report)
            assert status_of(f"/flows/{inv}/files/report.json") == 404
            assert not any(x.label.endswith(".json") and "report" in x.label for x in flow_files(s, inv))
            # nor an archive path that points outside the archive
            with Store(s).session() as ses:
                ses.execute(update(Flow).where(Flow.id == inv).values(archive_path=str(s.config_file)))
                ses.commit()
            assert status_of(f"/flows/{inv}/files/original") == 404
    finally:
        operators.remove(s, LOGIN[0])



class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None


def _basic(auth: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()}
