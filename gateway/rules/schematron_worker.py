"""The EN 16931 rule worker: the child process that owns Saxon.

Started by an engine (gateway.rules.schematron) as
`python -m gateway.rules.schematron_worker --serve REQUEST_FD REPLY_FD`, or by
the service for all its workers as `--listen NAME [--warm RULES]...` (the rule
server, gateway.rules.saxon_link); never imported by the gateway process:
saxonche loads here only. It compiles rule
sets once, by path, checks documents (parsed again by the safe parser first)
and answers each request with compact tuples: (rule, flag, xpath, line, value,
text) per failed assert, read from the SVRL against the input tree.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import struct
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from lxml import etree

from gateway.core import xmlsafe
from gateway.rules.schematron import STAGE

_SVRL = "{http://purl.oclc.org/dsdl/svrl}"
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_BRACKET_ID = re.compile(r"^\[([A-Za-z][\w.\-]*)\]")
# Steps of the SVRL location written by the ISO skeleton's schematron-get-full-path:
#   /*:Local[namespace-uri()='ns'][n]   /name[n]   /@name   /@*[local-name()='x' and namespace-uri()='ns']
_STEP = re.compile(
    r"/(?:\*:(?P<local>[^\[/]+)\[namespace-uri\(\)='(?P<ns>[^']*)'\]\[(?P<pos>\d+)\]"
    r"|(?P<bare>[^\[/@*]+)\[(?P<bpos>\d+)\]"
    r"|@\*\[local-name\(\)='(?P<alocal>[^']+)' and namespace-uri\(\)='(?P<ans>[^']*)'\]"
    r"|@(?P<attr>[^\[/]+))")
_PREFIXES = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2": "cac",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2": "cbc",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2": "ext",
    "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100": "rsm",
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100": "ram",
    "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100": "udt",
    "urn:un:unece:uncefact:data:standard:QualifiedDataType:100": "qdt",
}
_VALUE_MAX = 200
_TEXT_MAX = 1000


class _Rules:
    """Compiled rule sets, by path, inside the child."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.xslt = proc.new_xslt30_processor()
        self.compiled: dict[str, Any] = {}
        self.failed: dict[str, str] = {}

    def compile(self, path: str) -> Any:
        exe = self.compiled.get(path)
        if exe is None:
            if path in self.failed:  # do not recompile a broken rule set per document
                raise RuntimeError(self.failed[path])
            try:
                # From the file, so document() finds the codedb next to the stylesheet.
                exe = self.compiled[path] = self.xslt.compile_stylesheet(stylesheet_file=path)
            except Exception as exc:
                self.failed[path] = f"{type(exc).__name__}: {exc}"
                raise
        return exe

    def check(self, path: str, xml: bytes) -> tuple[str, Any]:
        exe = self.compile(path)
        tree, refused = xmlsafe.parse(xml, stage=STAGE)
        if tree is None:
            return "refused", tuple(refused)
        root = tree.getroot()
        # Unicode text without an XML declaration: no charset for Saxon to get wrong.
        node = self.proc.parse_xml(xml_text=etree.tostring(root, encoding="unicode"))
        svrl = exe.transform_to_string(xdm_node=node)
        if svrl is None:
            raise RuntimeError("Saxon returned no SVRL")
        return "ok", tuple(_asserts(svrl, root))


def _asserts(svrl: str, root: Any) -> Iterator[tuple[str | None, str | None, str | None, int | None, str | None, str]]:
    """(rule, flag, xpath, line, value, text) for each failed assert and successful report."""
    if "failed-assert" not in svrl and "successful-report" not in svrl:
        return  # the usual case: nothing to read
    doc = etree.fromstring(_XML_DECL.sub("", svrl, count=1))
    for el in doc.iter(_SVRL + "failed-assert", _SVRL + "successful-report"):
        t = el.find(_SVRL + "text")
        text = " ".join("".join(t.itertext()).split()) if t is not None else ""
        if len(text) > _TEXT_MAX:  # a message quoting a whole element's text (BR-FR-08 quotes the invoice's)
            text = text[:_TEXT_MAX] + "…"
        m = _BRACKET_ID.match(text)
        rule = el.get("id") or (m.group(1) if m else None)
        xpath, line, value = locate(el.get("location") or "", root)
        yield rule, el.get("flag"), xpath, line, value, text or el.get("test", "")


def locate(location: str, root: Any) -> tuple[str | None, int | None, str | None]:
    """Turn an SVRL location into (readable xpath, line, value) against the input tree.

    "/*:Invoice[namespace-uri()='…Invoice-2'][1]/*:DocumentCurrencyCode[…][1]"
    becomes "/Invoice/cbc:DocumentCurrencyCode", its line and its text; a
    position is kept only where siblings share the name. Unknown forms are
    returned as they are.
    """
    steps, end = [], 0
    for m in _STEP.finditer(location):
        if m.start() != end:
            break
        steps.append(m)
        end = m.end()
    if not steps or end != len(location):
        return location or None, None, None
    parts: list[str] = []
    node, value = None, None
    for m in steps:
        attr = m["alocal"] or m["attr"]
        if attr:
            ans = m["ans"] or ""
            parts.append("@" + _qname(ans, attr, None))
            if node is not None:
                value = node.get(f"{{{ans}}}{attr}" if ans else attr)
            break
        ns, local = m["ns"] or "", m["local"] or m["bare"]
        pos = int(m["pos"] or m["bpos"])
        tag = f"{{{ns}}}{local}" if ns else local
        if node is None and not parts:
            same = [root] if root.tag == tag else []
        else:
            same = list(node.iterchildren(tag)) if node is not None else []
        el = same[pos - 1] if len(same) >= pos else None
        parts.append(_qname(ns, local, el) + (f"[{pos}]" if len(same) > 1 or (el is None and pos > 1) else ""))
        node = el
    line = node.sourceline if node is not None else None
    if value is None and node is not None and len(node) == 0 and node.text and node.text.strip():
        value = node.text.strip()
    return "/" + "/".join(parts), line, (value[:_VALUE_MAX] if value else None)


def _qname(ns: str, local: str, el: Any) -> str:
    prefix = _PREFIXES.get(ns)
    if prefix is None:
        prefix = (el.prefix if el is not None else None) or ("*" if ns else "")
    return f"{prefix}:{local}" if prefix else local


def _start_saxon() -> tuple[Any, str | None]:
    """(rules, None), or (None, why Saxon cannot run): a missing saxonche is a reply, not a crash."""
    try:
        from saxonche import PySaxonProcessor

        proc = PySaxonProcessor(license=False)
        return _Rules(proc), None
    except Exception as exc:  # import error, or Saxon itself could not start
        return None, f"saxonche unavailable: {type(exc).__name__}: {exc}"


def _answer(rules: _Rules, request: tuple[Any, ...]) -> tuple[Any, ...]:
    op, rid = request[0], request[1]
    try:
        if op == "compile":
            rules.compile(request[2])
            return rid, "ok", None
        if op == "check":
            return (rid, *rules.check(request[2], request[3]))
        return rid, "error", f"unknown request {op!r}"
    except Exception as exc:  # Saxon errors are data for the gateway, not a crash
        return rid, "error", f"{type(exc).__name__}: {exc}"


def serve(req_fd: int, resp_fd: int) -> int:
    """A child of one engine: answer requests until the gateway closes the pipe."""
    inp = Connection(req_fd, writable=False)
    out = Connection(resp_fd, readable=False)
    rules, fatal = _start_saxon()
    if rules is None:
        out.send(("fatal", fatal))
        return 1
    out.send(("ready", os.getpid(), rules.proc.version))
    while True:
        try:
            request = inp.recv()
        except EOFError:
            return 0
        try:
            out.send(_answer(rules, request))
        except OSError:  # the gateway went away
            return 0


def listen(name: str, warm: list[str], parent: int) -> int:
    """The service's rule server: one Saxon for its workers, on the Unix
    socket `name`, a request at a time in the order they come. Leaves
    when the service that started it (`parent`) is gone, or on SIGTERM."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(name)  # a dead predecessor's socket (the folder is the service's own)
    except FileNotFoundError:
        pass
    server.bind(name)  # first: workers may connect while Saxon starts
    server.listen(64)
    rules, fatal = _start_saxon()
    for path in warm if rules is not None else ():
        try:  # the rules every batch of UBL and CII needs, compiled before the first document comes
            rules.compile(path)
        except Exception:  # noqa: BLE001 - said to the first document that asks for it
            pass
    hello = ("ready", os.getpid(), rules.proc.version) if rules is not None else ("fatal", fatal)
    try:
        _serve_clients(server, rules, hello, parent)
    finally:  # its socket and the service's folder for it go with it (a successor makes them again)
        for remove in (os.unlink, os.rmdir):
            try:
                remove(name if remove is os.unlink else os.path.dirname(name))
            except OSError:
                pass
    return 0


def _serve_clients(server: socket.socket, rules: _Rules | None, hello: tuple, parent: int) -> None:
    clients: list[Connection] = []
    while os.getppid() == parent:
        for ready in wait([server, *clients], timeout=1.0):
            if ready is server:
                client = _accept(server)
                if client is not None:
                    try:
                        client.send(hello)
                        clients.append(client)
                    except OSError:
                        client.close()
                continue
            try:
                request = ready.recv()
                if rules is None:
                    raise EOFError  # said at hello: nothing to serve
                if request[0] == "check":  # its time starts now (saxon_link.ServerLink._await_turn)
                    ready.send((request[1], "started", None))
                ready.send(_answer(rules, request))
            except (EOFError, OSError):  # a worker left (or stopped, or was killed)
                clients.remove(ready)
                ready.close()


def _accept(server: socket.socket) -> Connection | None:
    """A worker's connection, if it is one of this user's processes."""
    try:
        sock, _ = server.accept()
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    if uid != os.getuid():
        sock.close()
        return None
    return Connection(sock.detach())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.rules.schematron_worker",
                                 description="EN 16931 rule worker (started by the gateway).")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", nargs=2, type=int, metavar=("REQUEST_FD", "REPLY_FD"))
    mode.add_argument("--listen", metavar="SOCKET", help="serve the workers of a service on this Unix socket")
    ap.add_argument("--warm", action="append", default=[], metavar="RULES", help="compile these at start")
    ap.add_argument("--parent", type=int, default=0, help="leave when this process is gone (default: the parent)")
    args = ap.parse_args(argv)
    if args.listen:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        return listen(args.listen, args.warm, args.parent or os.getppid())
    return serve(*args.serve)


if __name__ == "__main__":
    sys.exit(main())
