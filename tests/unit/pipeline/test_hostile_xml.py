"""Hostile and broken XML gets a clear IRR_SYNTAX answer, fast, never a crash."""
from __future__ import annotations

import time

import pytest

from gateway.core import xmlsafe
from gateway.pipeline.evaluate import evaluate_file
from gateway.core.records import FlowState

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol9;</Invoice>"""

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&x;</Invoice>"""

XXE_HTTP = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>"""

QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * 50000 + b'">]><r>'
             + b"&a;" * 5000 + b"</r>")

# the DOCTYPE hidden after a comment and in lower case
SNEAKY = b'<?xml version="1.0"?><!-- hello --><!doctype r [<!ENTITY a "b">]><r>&a;</r>'

TRUNCATED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl:schema:'
             b'xsd:Invoice-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n'
             b"<cbc:ID>F1</cbc:ID>\n<cbc:IssueDate>2026-")

# declared UTF-8, bytes are Latin-1 and a stray NUL
MESS = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:'
        b'Invoice-2"><Note>caf\xe9 \x00 cr\xe8me</Note></Invoice>')


@pytest.mark.parametrize("name,data", [
    ("billion-laughs.xml", BILLION_LAUGHS), ("xxe-file.xml", XXE_FILE), ("xxe-http.xml", XXE_HTTP),
    ("quadratic.xml", QUADRATIC), ("sneaky.xml", SNEAKY), ("truncated.xml", TRUNCATED), ("mess.xml", MESS),
])
def test_hostile_xml_is_rejected_with_irr_syntax(home, name, data):
    t0 = time.monotonic()
    ev = evaluate_file(data, name, home)
    assert time.monotonic() - t0 < 2.0
    assert ev.state is FlowState.IN_REJETE
    errs = [e for v in ev.verdicts for e in v.errors]
    assert errs and all(e.code == "IRR_SYNTAX" for e in errs), errs
    assert errs[0].message and errs[0].location is not None


def test_truncated_file_says_where():
    tree, problems = xmlsafe.parse(TRUNCATED)
    assert tree is None
    assert problems[0].code == "IRR_SYNTAX"
    assert problems[0].location.line == 4


def test_xxe_never_reads_the_file():
    tree, problems = xmlsafe.parse(XXE_FILE)
    assert tree is None and problems
    assert "root:" not in " ".join(p.message for p in problems)


def test_doctype_location_points_at_the_declaration():
    _tree, problems = xmlsafe.parse(b"<?xml version='1.0'?>\n\n<!DOCTYPE x>\n<x/>")
    assert problems[0].location.line == 3
    assert problems[0].value == "<!DOCTYPE"


def test_well_formed_but_foreign_xml_is_a_type_error(home):
    ev = evaluate_file(b'<?xml version="1.0"?><Order xmlns="urn:example:order"/>', "order.xml", home)
    (err,) = ev.verdicts[0].errors
    assert err.code == "IRR_TYPE_F"
    assert "Order" in err.message and err.value == "Order"
