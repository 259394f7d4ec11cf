"""An invoice's guideline (BT-24, the specification identifier) and the
Factur-X / ZUGFeRD profile it names.

BT-24 is `ram:GuidelineSpecifiedDocumentContextParameter/ram:ID` in a CII
(`SpecifiedExchangedDocumentContext` in ZUGFeRD 1.0) and `cbc:CustomizationID`
in a UBL. The profile names are those of the Factur-X XMP
(fx:ConformanceLevel): MINIMUM, BASIC WL, BASIC, EN 16931, EXTENDED, and
XRECHNUNG (ZUGFeRD 2.x). Any other guideline, e.g. a CIUS such as Peppol BIS
Billing 3.0, is no Factur-X profile: None.
"""
from __future__ import annotations

import re

from lxml import etree

MINIMUM, BASIC_WL, BASIC, EN16931, EXTENDED, XRECHNUNG = (
    "MINIMUM", "BASIC WL", "BASIC", "EN 16931", "EXTENDED", "XRECHNUNG")
PROFILES = (MINIMUM, BASIC_WL, BASIC, EN16931, EXTENDED, XRECHNUNG)
POOR_PROFILES = (MINIMUM, BASIC_WL)  # no invoice lines: not EN 16931 invoices
# The French reform's extended profile (XP Z12-012). To Factur-X it is an
# EXTENDED (profile_from_guideline says so, as the XMP does); its own rules
# are the FNFE-MPE ones (rulesets.plan), found by `french_profile`.
EXTENDED_CTC_FR = "EXTENDED-CTC-FR"

# Guideline IDs of Factur-X 1.0, ZUGFeRD 2.x and 1.0, matched whole and
# case-insensitively. ZUGFeRD 1 COMFORT is the ancestor of EN 16931.
_FX = r"(?:urn:)?(?:factur-x\.eu|zugferd\.de):\dp\d"
_EN = r"urn:cen\.eu:en16931:2017"
_SEP = r"[#:](?:compliant|conformant)[#:]"
_CTC_FR = r"urn\.cpro\.gouv\.fr:1p0:extended-ctc-fr"
_GUIDELINES = [
    (rf"{_FX}:minimum", MINIMUM),
    (rf"{_FX}:basicwl", BASIC_WL),
    (rf"{_EN}{_SEP}{_FX}:basic", BASIC),
    (rf"{_EN}{_SEP}{_FX}:extended", EXTENDED),
    (rf"{_EN}{_SEP}{_CTC_FR}", EXTENDED),
    (rf"{_EN}{_SEP}urn:xoev-de:kosit:standard:xrechnung_[\d.]+"
     rf"(?:{_SEP}urn:xoev-de:kosit:extension:xrechnung_[\d.]+)?", XRECHNUNG),
    # XRechnung 3.x (ZUGFeRD 2.3's XRECHNUNG profile)
    (rf"{_EN}{_SEP}urn:xeinkauf\.de:kosit:xrechnung_[\d.]+"
     rf"(?:{_SEP}urn:xeinkauf\.de:kosit:extension:xrechnung_[\d.]+)?", XRECHNUNG),
    (rf"{_EN}(?:{_SEP}{_FX}:en16931)?", EN16931),
    (r"urn:ferd:CrossIndustryDocument:invoice:1p0:basic", BASIC),
    (r"urn:ferd:CrossIndustryDocument:invoice:1p0:comfort", EN16931),
    (r"urn:ferd:CrossIndustryDocument:invoice:1p0:extended", EXTENDED),
]
_GUIDELINE_RES = [(re.compile(p, re.IGNORECASE), name) for p, name in _GUIDELINES]
_XMP_LEVELS = {
    "MINIMUM": MINIMUM, "BASICWL": BASIC_WL, "BASIC": BASIC, "EN16931": EN16931,
    "COMFORT": EN16931, "EXTENDED": EXTENDED, "XRECHNUNG": XRECHNUNG,
}


def profile_from_guideline(gid: str | None) -> str | None:
    """The Factur-X / ZUGFeRD profile a guideline ID names, or None."""
    gid = (gid or "").strip()
    for rx, name in _GUIDELINE_RES:
        if rx.fullmatch(gid):
            return name
    return None


_CTC_FR_RE = re.compile(rf"{_EN}{_SEP}{_CTC_FR}", re.IGNORECASE)


def french_profile(gid: str | None) -> str | None:
    """EXTENDED_CTC_FR if the guideline ID is the reform's extended profile
    (`urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr`), else None."""
    return EXTENDED_CTC_FR if _CTC_FR_RE.fullmatch((gid or "").strip()) else None


def profile_from_xmp(level: str | None) -> str | None:
    """The profile an XMP fx:ConformanceLevel (or a profile name) names, or None."""
    key = re.sub(r"[\s_-]+", "", (level or "").upper())
    return _XMP_LEVELS.get(key)


def guideline_id(root: etree._Element, *, ubl: bool = True) -> str | None:
    """BT-24 of a CII (D16B or ZUGFeRD 1.0) or, unless `ubl` is False, UBL
    document, stripped; None if absent or empty."""
    path = ("/*/*[local-name()='ExchangedDocumentContext' or local-name()='SpecifiedExchangedDocumentContext']"
            "/*[local-name()='GuidelineSpecifiedDocumentContextParameter']/*[local-name()='ID']/text()")
    if ubl:
        path += " | /*/*[local-name()='CustomizationID']/text()"
    ids = root.xpath(path)
    return (str(ids[0]).strip() or None) if ids else None
