"""Builders for the PDF tests, all in code: plain PDFs, Factur-X, a test PKI,
signed PDFs and the ways a signed PDF gets broken afterwards."""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import facturx
from asn1crypto import cms, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pypdf import PdfWriter
from pypdf.generic import (ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject, NameObject,
                           TextStringObject)

from gateway.core import config
from invoice_support import cii_invoice

MARKER = b"(Invoice INV-001 total 120.00 EUR)"

GUIDELINES = {
    "minimum": "urn:factur-x.eu:1p0:minimum",
    "basicwl": "urn:factur-x.eu:1p0:basicwl",
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    "en16931": "urn:cen.eu:en16931:2017",
    "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
}


def settings_for(home: Path, **raw_sections) -> config.Settings:
    """A fresh home; keyword arguments become raw TOML sections."""
    s = config.load(home)
    return dataclasses.replace(s, raw={**s.raw, **raw_sections}) if raw_sections else s


# --- plain PDFs --------------------------------------------------------------

def _writer(text: bytes | None = MARKER, pages: int = 1) -> PdfWriter:
    w = PdfWriter()
    for _ in range(pages):
        page = w.add_blank_page(595, 842)
        if text:
            font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                     NameObject("/Subtype"): NameObject("/Type1"),
                                     NameObject("/BaseFont"): NameObject("/Helvetica")})
            page[NameObject("/Resources")] = DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
            content = DecodedStreamObject()
            content.set_data(b"BT /F1 14 Tf 72 770 Td " + text + b" Tj ET")
            page.replace_contents(content)
    return w


def _bytes(w: PdfWriter) -> bytes:
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def make_pdf(text: bytes | None = MARKER, pages: int = 1) -> bytes:
    return _bytes(_writer(text, pages))


def make_pdf_with_files(files: dict[str, bytes], text: bytes | None = MARKER) -> bytes:
    w = _writer(text)
    for name, data in files.items():
        w.add_attachment(name, data)
    return _bytes(w)


def make_encrypted_pdf() -> bytes:
    w = _writer()
    w.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-128")
    return _bytes(w)


def make_openaction_js_pdf() -> bytes:
    w = _writer()
    w._root_object[NameObject("/OpenAction")] = DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert('hi')")})
    return _bytes(w)


def make_names_js_pdf() -> bytes:
    """Document-level JavaScript in the catalog's /Names tree."""
    w = _writer()
    action = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("this.print({bUI:false});")})
    w._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): DictionaryObject(
        {NameObject("/Names"): ArrayObject([TextStringObject("print"), action])})})
    return _bytes(w)


def make_launch_pdf() -> bytes:
    """A link annotation whose action launches a program."""
    w = _writer()
    annot = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([FloatObject(0), FloatObject(0), FloatObject(100), FloatObject(100)]),
        NameObject("/A"): DictionaryObject({NameObject("/S"): NameObject("/Launch"),
                                            NameObject("/F"): TextStringObject("calc.exe")}),
    })
    w.add_annotation(0, annot)
    return _bytes(w)


def make_garbage_pdf() -> bytes:
    return b"%PDF-1.7\n" + bytes((i * 37 + 11) % 256 for i in range(4000)) + b"\n%%EOF\n"


def raw_pdf(*objects: bytes) -> bytes:
    """A PDF written by hand, objects numbered from 1 (object 1 the catalog),
    with a correct xref table: for structures no library would write."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Root 1 0 R /Size %d >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_cyclic_pages_pdf() -> bytes:
    """A page tree whose /Kids points back to itself."""
    return raw_pdf(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>")


def make_deep_pdf(depth: int = 20000) -> bytes:
    """An array nested thousands deep: the kind of input that blows recursion."""
    return raw_pdf(b"<< /Type /Catalog /Pages 2 0 R /X " + b"[" * depth + b"]" * depth + b" >>",
                   b"<< /Type /Pages /Kids [] /Count 0 >>")


def make_action_loop_pdf(n: int = 300) -> bytes:
    """/OpenAction with a /Next chain that loops: the scan must end."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    for i in range(n):
        nxt = 3 + (i + 1) % n
        objs.append(b"<< /S /GoTo /D [0 /Fit] /Next %d 0 R >>" % nxt)
    return raw_pdf(*objs)


def make_empty_field_pdf() -> bytes:
    w = IncrementalPdfFileWriter(io.BytesIO(make_pdf()), strict=False)
    fields.append_signature_field(w, fields.SigFieldSpec("Sig1", box=(50, 50, 250, 100)))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


# --- Factur-X -------------------------------------------------------------------

FACTURX_LINES = (("Consulting", 1, "100.00"),)  # 100.00 + 20 % VAT: the 120.00 of MARKER


def cii(guideline: str = GUIDELINES["en16931"], number: str = "INV-001", total: str | None = None,
        with_line: bool = True) -> bytes:
    """The CII of the page's invoice (MARKER) from invoice_support.cii_invoice;
    `total` forces its totals, `with_line=False` for the profiles that carry no
    lines. Kept for the tests that call it: new code calls cii_invoice."""
    return cii_invoice(profile=guideline, number=number, lines=FACTURX_LINES if with_line else (),
                       payable=total, gross=total)


def make_facturx(level: str = "en16931", *, xml: bytes | None = None, xmp_level: str | None = None,
                 attachments: dict[str, bytes] | None = None) -> bytes:
    """A Factur-X made by the `facturx` package. `xmp_level` writes another
    level into the XMP than the XML's, to build an incoherent file."""
    xml = xml if xml is not None else cii(GUIDELINES[level], with_line=level not in ("minimum", "basicwl"))
    atts = {name: {"filedata": data} for name, data in (attachments or {}).items()}
    return facturx.generate_from_binary(make_pdf(), xml, flavor="factur-x", level=xmp_level or level,
                                        check_xsd=False, attachments=atts or None)


# --- a test PKI -------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Pki:
    root: Identity
    intermediate: Identity
    signer: Identity
    other_root: Identity  # a CA nobody trusts
    other_signer: Identity
    tsa: Identity  # a time-stamping authority under the trusted root


def _cert(subject: str, key, issuer: Identity | None, *, ca: bool, not_before: datetime,
          not_after: datetime, tsa: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gateway Test PKI")])
    b = (x509.CertificateBuilder()
         .subject_name(name)
         .issuer_name(issuer.cert.subject if issuer else name)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before)
         .not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                            critical=False)
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    elif tsa:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    return b.sign((issuer.key if issuer else key), hashes.SHA256())


def make_pki(now: datetime | None = None) -> Pki:
    """CAs valid ten years around now; signers valid from yesterday for one year."""
    now = now or datetime.now(timezone.utc)
    ca_from, ca_to = now - timedelta(days=3650), now + timedelta(days=3650)
    sig_from, sig_to = now - timedelta(days=1), now + timedelta(days=365)

    def ident(subject, issuer, ca, nb, na, tsa=False):
        # pyHanko's test TSA signs with RSA only
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if tsa else ec.generate_private_key(
            ec.SECP256R1())
        return Identity(_cert(subject, key, issuer, ca=ca, not_before=nb, not_after=na, tsa=tsa), key)

    root = ident("Test Root CA", None, True, ca_from, ca_to)
    inter = ident("Test Issuing CA", root, True, ca_from, ca_to)
    signer = ident("Alice Fournisseur", inter, False, sig_from, sig_to)
    other_root = ident("Unknown Root CA", None, True, ca_from, ca_to)
    other_signer = ident("Mallory", other_root, False, sig_from, sig_to)
    tsa = ident("Test TSA", root, False, ca_from, ca_to, tsa=True)
    return Pki(root, inter, signer, other_root, other_signer, tsa)


def trust(settings: config.Settings, *certs: Identity) -> None:
    """Drop CA certificates in the home's trust folder."""
    settings.trust.mkdir(parents=True, exist_ok=True)
    for i, ident in enumerate(certs):
        (settings.trust / f"ca{i}.pem").write_bytes(ident.pem)


def _asn1_cert(c: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))


def _asn1_key(ident: Identity) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(ident.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _signer(signer: Identity, chain: tuple[Identity, ...] = ()) -> signers.SimpleSigner:
    return signers.SimpleSigner(
        signing_cert=_asn1_cert(signer.cert), signing_key=_asn1_key(signer),
        cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(c.cert) for c in chain]))


def sign(pdf: bytes, signer: Identity, chain: tuple[Identity, ...] = (), field: str = "Sig1", *,
         timestamper: DummyTimeStamper | None = None) -> bytes:
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    out = signers.sign_pdf(w, signers.PdfSignatureMetadata(field_name=field), signer=_signer(signer, chain),
                           timestamper=timestamper)
    return out.getvalue()


def sign_by(pki: Pki, pdf: bytes, field: str = "Sig1", *, timestamped: bool = False) -> bytes:
    """Signed by Alice (trusted chain); `timestamped`: with a signature timestamp token from the test TSA."""
    return sign(pdf, pki.signer, (pki.intermediate, pki.root), field,
                timestamper=local_tsa(pki) if timestamped else None)


def local_tsa(pki: Pki) -> DummyTimeStamper:
    """A time-stamping authority in process, on the test PKI: no network."""
    return DummyTimeStamper(tsa_cert=_asn1_cert(pki.tsa.cert), tsa_key=_asn1_key(pki.tsa),
                            certs_to_embed=[_asn1_cert(pki.root.cert)])


def timestamp_document(pki: Pki, pdf: bytes, *, visible: bool = False) -> bytes:
    """Append a document timestamp (as PAdES B-LTA does) from the test TSA;
    `visible`: in a field with a widget on page 1, as some producers write it."""
    stamper = local_tsa(pki)
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    name = None
    if visible:
        name = "Stamp1"
        fields.append_signature_field(w, fields.SigFieldSpec(name, box=(300, 50, 500, 100)))
    out = signers.PdfTimeStamper(stamper, field_name=name).timestamp_pdf(w, "sha256", timestamper=stamper)
    return out.getvalue()


# --- what happens to a signed PDF afterwards --------------------------------------

def flip_signed_byte(signed: bytes) -> bytes:
    """Change one byte of the page text, which the signature covers."""
    i = signed.index(MARKER) + len(b"(Invoice INV-00")
    return signed[:i] + b"9" + signed[i + 1:]


def _update(signed: bytes, change) -> bytes:
    w = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    change(w)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def update_info(signed: bytes) -> bytes:
    """Harmless: a new /Info dictionary (title) in an incremental update."""
    return _update(signed, lambda w: w.set_info(generic.DictionaryObject(
        {pdf_name("/Title"): generic.TextStringObject("Invoice INV-001 (archived)")})))


def update_page_content(signed: bytes) -> bytes:
    """Harmful: a new content stream painted on page 1 after signing."""
    def change(w):
        stream = w.add_object(generic.StreamObject(stream_data=b"BT /F1 30 Tf 72 600 Td (PAID - 0.00 EUR) Tj ET"))
        w.add_stream_to_page(0, stream)
    return _update(signed, change)


def swap_embedded_file(signed: bytes, name: str, data: bytes) -> bytes:
    """Replace an embedded file's bytes in an incremental update."""
    def change(w):
        names = w.root["/Names"]["/EmbeddedFiles"]["/Names"]
        for i in range(0, len(names), 2):
            if str(names[i]) == name:
                ref = names.raw_get(i + 1)
                spec = ref.get_object()
                new = w.add_object(generic.StreamObject(
                    {pdf_name("/Type"): pdf_name("/EmbeddedFile")}, stream_data=data))
                ef_raw = spec.raw_get("/EF")
                ef = ef_raw.get_object()
                for k in ("/F", "/UF"):
                    if k in ef:
                        ef[pdf_name(k)] = new
                w.mark_update(ef_raw if isinstance(ef_raw, generic.IndirectObject) else ref)
                return
        raise KeyError(name)
    return _update(signed, change)


def add_file_after_signing(signed: bytes, name: str, data: bytes) -> bytes:
    """An incremental update (pypdf) that embeds one more file."""
    w = PdfWriter(io.BytesIO(signed), incremental=True)
    w.add_attachment(name, data)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def corrupt_signature_value(signed: bytes) -> bytes:
    """Zero the CMS blob in /Contents: the signature can no longer be parsed."""
    start = signed.rindex(b"/Contents <") + len(b"/Contents <")
    end = signed.index(b">", start)
    return signed[:start] + b"0" * (end - start) + signed[end:]


# --- signatures made, broken or hidden by hand ---------------------------------------

_LAST_RANGE = re.compile(rb"/ByteRange\s*\[\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)\s*\]")


def _last_range(data: bytes) -> tuple[int, int, int, int]:
    """The last signature's /ByteRange [0 L1 S2 L2]: its /Contents fills the gap [L1, S2)."""
    m = list(_LAST_RANGE.finditer(data))[-1]
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def _last_cms(data: bytes) -> cms.ContentInfo:
    _zero, gap_start, gap_end, _len2 = _last_range(data)
    return cms.ContentInfo.load(bytes.fromhex(data[gap_start + 1:gap_end - 1].decode()), strict=False)


def _put_contents(data: bytes, der: bytes) -> bytes:
    """A new CMS in the last signature's /Contents (outside the signed bytes), zero padded."""
    _zero, gap_start, gap_end, _len2 = _last_range(data)
    room, hexed = gap_end - gap_start - 2, der.hex().encode()
    assert len(hexed) <= room, "the new signature value does not fit"
    return data[:gap_start + 1] + hexed + b"0" * (room - len(hexed)) + data[gap_end - 1:]


def reseal(data: bytes, edit, seal) -> bytes:
    """The last signature made again: `edit` changes its signed bytes (same
    length), `seal(signed bytes)` returns the new CMS (DER)."""
    edited = edit(data)
    assert len(edited) == len(data)
    _zero, len1, start2, len2 = _last_range(edited)
    return _put_contents(edited, seal(edited[:len1] + edited[start2:start2 + len2]))


def _same_length(data: bytes, old: bytes, new: bytes) -> bytes:
    i = data.rindex(old)
    assert len(new) <= len(old)
    return data[:i] + new.ljust(len(old)) + data[i + len(old):]


def _cms_over(pki: Pki, content: bytes, *, detached: bool = True) -> bytes:
    signer = _signer(pki.signer, (pki.intermediate, pki.root))
    return asyncio.run(signer.async_sign_general_data(content, "sha256", detached=detached)).dump()


def sign_legacy_sha1(pki: Pki, pdf: bytes) -> bytes:
    """/SubFilter /adbe.pkcs7.sha1, which pyHanko does not write: the CMS
    encapsulates the SHA-1 digest of the byte range."""
    return reseal(sign_by(pki, pdf),
                  lambda d: _same_length(d, b"/SubFilter /adbe.pkcs7.detached", b"/SubFilter /adbe.pkcs7.sha1"),
                  lambda signed: _cms_over(pki, hashlib.sha1(signed).digest(), detached=False))


def sign_unsupported_subfilter(pki: Pki, pdf: bytes) -> bytes:
    """/SubFilter /adbe.x509.rsa_sha1 (a PKCS#1 value, not a CMS): nobody validates that any more."""
    signed = sign_by(pki, pdf)
    return _same_length(signed, b"/SubFilter /adbe.pkcs7.detached", b"/SubFilter /adbe.x509.rsa_sha1")


def sign_over_other_bytes(pki: Pki, pdf: bytes) -> bytes:
    """A sound CMS whose message digest is not that of the bytes its byte range covers."""
    return reseal(sign_by(pki, pdf), lambda d: d, lambda signed: _cms_over(pki, signed + b"!"))


def timestamp_without_type(pki: Pki, pdf: bytes) -> bytes:
    """A document timestamp whose dictionary lacks /Type /DocTimeStamp (only /SubFilter /ETSI.RFC3161 says so)."""
    def seal(signed: bytes) -> bytes:
        return asyncio.run(local_tsa(pki).async_timestamp(hashlib.sha256(signed).digest(), "sha256")).dump()
    return reseal(timestamp_document(pki, pdf), lambda d: _same_length(d, b"/Type /DocTimeStamp", b""), seal)


def set_byte_range(signed: bytes, *numbers: int) -> bytes:
    """Rewrite the last /ByteRange (same width): to point outside the file, or before it."""
    m = list(_LAST_RANGE.finditer(signed))[-1]
    new = b"/ByteRange [" + b" ".join(b"%d" % n for n in numbers) + b"]"
    assert len(new) <= len(m.group(0)) + 40
    i = m.start()
    tail = signed[m.end():]
    pad = len(m.group(0)) + (len(tail) - len(tail.lstrip(b" "))) - len(new)  # pyHanko pads the array with spaces
    assert pad >= 0
    return signed[:i] + new + b" " * pad + tail.lstrip(b" ")


def byte_range_past_eof(pki: Pki, pdf: bytes) -> bytes:
    """A /ByteRange whose second range runs 500 bytes past the end of the file,
    signed over the bytes that do exist: a reader that stops at the end finds
    the digest right."""
    signed = sign_by(pki, pdf)
    _zero, len1, start2, len2 = _last_range(signed)
    return reseal(signed, lambda d: set_byte_range(d, 0, len1, start2, len2 + 500),
                  lambda covered: _cms_over(pki, covered))


def byte_range_negative(pki: Pki, pdf: bytes) -> bytes:
    """A /ByteRange with a negative length."""
    signed = sign_by(pki, pdf)
    _zero, len1, start2, _len2 = _last_range(signed)
    return reseal(signed, lambda d: set_byte_range(d, 0, len1, start2, -5), lambda covered: _cms_over(pki, covered))


def _rewrite_token(signed: bytes, tokens: list | None) -> bytes:
    """The last signature's timestamp token attribute replaced: None removes it, [] leaves it empty."""
    ci = cms.ContentInfo.load(_last_cms(signed).dump())
    si = ci["content"]["signer_infos"][0]
    attrs = [a for a in si["unsigned_attrs"]] if si["unsigned_attrs"] is not core.VOID else []
    attrs = [a for a in attrs if a["type"].native != "signature_time_stamp_token"]
    if tokens is not None:
        attrs.append(cms.CMSAttribute({"type": "signature_time_stamp_token", "values": tokens}))
    si["unsigned_attrs"] = cms.CMSAttributes(attrs) if attrs else None
    return _put_contents(signed, ci.dump(force=True))


def remove_timestamp_token(signed: bytes) -> bytes:
    return _rewrite_token(signed, None)


def empty_timestamp_token(signed: bytes) -> bytes:
    """The timestamp attribute kept (declared), its token removed."""
    return _rewrite_token(signed, [])


def garble_timestamp_token(signed: bytes) -> bytes:
    """The token replaced by a CMS that is no timestamp token (an empty SignedData: no TSTInfo)."""
    empty = cms.SignedData({"version": "v1", "digest_algorithms": [], "encap_content_info": {"content_type": "data"},
                            "signer_infos": []})
    return _rewrite_token(signed, [cms.ContentInfo({"content_type": "signed_data", "content": empty})])


def foreign_timestamp_token(pki: Pki, signed: bytes) -> bytes:
    """A genuine token from the TSA, but for other data than this signature's value."""
    token = asyncio.run(local_tsa(pki).async_timestamp(hashlib.sha256(b"another signature").digest(), "sha256"))
    return _rewrite_token(signed, [token])


def field_requiring_timestamp(pdf: bytes, field: str = "Sig1") -> bytes:
    """An empty signature field whose seed value requires a timestamp."""
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    sv = fields.SigSeedValueSpec(timestamp_server_url="http://tsa.invalid", timestamp_required=True)
    fields.append_signature_field(w, fields.SigFieldSpec(field, seed_value_dict=sv))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def add_validation_data(pki: Pki, signed: bytes) -> bytes:
    """A DSS with a VRI entry for the last signature (PAdES B-LT), in an incremental update."""
    _zero, gap_start, gap_end, _len2 = _last_range(signed)
    out = io.BytesIO(signed)
    DocumentSecurityStore.add_dss(out, signed[gap_start + 1:gap_end - 1],
                                  certs=[_asn1_cert(c.cert) for c in (pki.signer, pki.intermediate, pki.root)],
                                  strict=False)
    return out.getvalue()


def hide_signature(signed: bytes, unsigned: bytes) -> bytes:
    """The last startxref pointed back at the unsigned original's xref: a reader
    sees the unsigned revision, the signature's bytes are still in the file."""
    old = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", unsigned).group(1)
    i = signed.rindex(b"startxref")
    return signed[:i] + b"startxref\n" + old + b"\n%%EOF\n"


def break_last_xref(signed: bytes) -> bytes:
    """The signed revision's cross-reference section made unreadable (its keyword and trailer garbled)."""
    i = signed.rindex(b"\nxref\n")
    return signed[:i] + b"\nxrXf\n" + signed[i + 6:].replace(b"trailer", b"trXiler")


def make_signed_encrypted(pki: Pki) -> bytes:
    """An AES-encrypted PDF (empty user password) signed by Alice."""
    w = IncrementalPdfFileWriter(io.BytesIO(make_encrypted_pdf()), strict=False)
    w.encrypt("")
    out = signers.sign_pdf(w, signers.PdfSignatureMetadata(field_name="Sig1"),
                           signer=_signer(pki.signer, (pki.intermediate, pki.root)))
    return out.getvalue()


def make_form_pdf(field: str = "Amount") -> bytes:
    """A PDF with one text form field (empty)."""
    w = _writer()
    annot = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Widget"),
        NameObject("/FT"): NameObject("/Tx"), NameObject("/T"): TextStringObject(field),
        NameObject("/Rect"): ArrayObject([FloatObject(72), FloatObject(700), FloatObject(272), FloatObject(720)]),
        NameObject("/V"): TextStringObject(""),
    })
    ref = w._add_object(annot)
    w.pages[0][NameObject("/Annots")] = ArrayObject([ref])
    w._root_object[NameObject("/AcroForm")] = DictionaryObject({NameObject("/Fields"): ArrayObject([ref])})
    return _bytes(w)


def fill_form_field(signed: bytes, field: str, value: str) -> bytes:
    """Fill a text field in an incremental update, as a viewer does after signing."""
    def change(w):
        for ref in w.root["/AcroForm"].raw_get("/Fields"):
            obj = ref.get_object()
            if str(obj.get("/T")) == field:
                obj[pdf_name("/V")] = generic.TextStringObject(value)
                w.mark_update(ref)
    return _update(signed, change)


def append_junk(signed: bytes) -> bytes:
    """Bytes appended after the signed %%EOF that are no revision."""
    return signed + b"\n% appended after signing, outside the signed range\n"
