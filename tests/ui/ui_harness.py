"""What the web-page tests share: the stack's handle, the browser's settings, screenshots."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
]
#: Monthly-ish scoring runs: the older ones fall in contracts whose outcome is now known.
AS_OFS = (date(2024, 9, 30), date(2024, 12, 31), date(2025, 3, 31), date(2025, 5, 31),
          date(2025, 6, 30))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


#: The browser window of every page test.
VIEWPORT = {"width": 1280, "height": 900}


@dataclass
class UiStack:
    base: str
    keys: dict[str, str]  # role → key; "csm" and "other_csm" are two CSMs' keys
    csm_id: str
    other_csm_id: str
    frame: pd.DataFrame  # the latest feature vectors (every account)
    data_dir: Path
    factory: Any
    artifacts: Path

    def api(self, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30,
                            headers={"Authorization": f"Bearer {self.keys[role]}"})

    def accounts_of(self, csm_id: str) -> list[str]:
        return sorted(self.frame.loc[self.frame["csm_id"] == csm_id, "account_id"].astype(str))


def save_screenshot(page: Any, stack: UiStack, name: str) -> Path:
    """Full-page PNG into the test-artifact dir; also into docs/screenshots (which the README
    shows) when ``RENEWAL_UPDATE_SCREENSHOTS=1``, so a test run leaves the checkout clean."""
    target = stack.artifacts / name
    page.screenshot(path=str(target), full_page=True)
    if os.environ.get("RENEWAL_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target, SCREENSHOTS / name)
    return target


#: The page's session cookie: it holds a server-side session's token, never the key.
SESSION_COOKIE = "renewal_ui_session"


def session_cookies(stack: UiStack, role: str) -> dict[str, str]:
    """Cookies of a fresh page session of ``role``'s key, signed in through the form (an
    http client's way to what :func:`sign_in` does in the browser)."""
    with httpx.Client(base_url=stack.base, timeout=30) as client:
        form = client.get("/ui/login").text
        token = re.search(r'name="login_token" value="([^"]+)"', form)
        assert token, form[:300]
        answer = client.post("/ui/login", data={"api_key": stack.keys[role],
                                                "login_token": token.group(1)})
        assert answer.status_code == 303, answer.text[:300]
        return {SESSION_COOKIE: answer.cookies[SESSION_COOKIE]}


def sign_in(context: Any, stack: UiStack, role: str) -> Any:
    """A new page of ``context`` signed in with ``role``'s key through the sign-in form."""
    page = context.new_page()
    page.goto(f"{stack.base}/ui/login")
    page.get_by_label("API key").fill(stack.keys[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/risk-list"))
    return page
