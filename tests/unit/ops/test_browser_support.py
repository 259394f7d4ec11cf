"""Without chromium the browser tests are skipped, saying why, unless CI
asks for them (GATEWAY_REQUIRE_BROWSER=1): then they fail."""
from __future__ import annotations

import pytest

import browser_support


def test_a_missing_chromium_skips_with_the_reason(monkeypatch):
    monkeypatch.setattr(browser_support, "CHROMIUM", "/nowhere/chromium")
    monkeypatch.setenv("PATH", "/nowhere")
    monkeypatch.delenv("GATEWAY_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium at /nowhere/chromium"):
        browser_support.chromium_path()


def test_a_missing_chromium_fails_when_ci_requires_the_browser(monkeypatch):
    monkeypatch.setattr(browser_support, "CHROMIUM", "/nowhere/chromium")
    monkeypatch.setenv("PATH", "/nowhere")
    monkeypatch.setenv("GATEWAY_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="GATEWAY_REQUIRE_BROWSER=1 but no chromium"):
        browser_support.chromium_path()
