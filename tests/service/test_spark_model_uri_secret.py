"""`renewal score --engine spark` names the registry it could not read without the token in
its URI (found by audit: the raw tracking URI went into the error, and so into scheduler and
CI logs)."""

from __future__ import annotations

import pytest

from renewal.errors import RenewalError

TOKEN = "dapi0123456789abcdef0123456789ab"


def test_a_registry_error_masks_the_token_of_the_tracking_uri(monkeypatch):
    from renewal.settings import get_settings
    from service.spark_scoring import resolve_model

    monkeypatch.setenv("RENEWAL_TRACKING_URI", f"http://{TOKEN}@127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    get_settings.cache_clear()
    try:
        with pytest.raises(RenewalError) as raised:
            resolve_model("models:/renewal@typo")
    finally:
        get_settings.cache_clear()
    message = str(raised.value)
    assert "is not in the registry at http://***@127.0.0.1:9" in message
    assert TOKEN not in message
