"""Registry errors name the registry without the token in its URI: `renewal score --engine
spark` (found by audit: the raw tracking URI went into the error, and so into scheduler and
CI logs; then by review: MLflow's own error text quotes the URL, token included) and the
service's model store (its log and /readyz detail)."""

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


def test_a_model_by_version_masks_the_token_in_mlflow_s_own_error(monkeypatch):
    """models:/name/3 needs no alias look-up: the first registry call is the model's info,
    whose MLflow error quotes the URL it called."""
    import mlflow

    from renewal.settings import get_settings
    from service.spark_scoring import ModelRef, renewal_udf

    uri = f"http://{TOKEN}@127.0.0.1:9"
    monkeypatch.setenv("RENEWAL_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    get_settings.cache_clear()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        with pytest.raises(RenewalError) as raised:
            renewal_udf(None, ModelRef("models:/renewal/3", "renewal", "3"), top_k=3)
    finally:
        get_settings.cache_clear()
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    assert "cannot be read" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_a_long_token_is_masked_before_the_message_is_cut():
    """Cut first, a token crossing the cut kept its head in clear (~180 characters of a JWT)."""
    from renewal.uri_secrets import error_line

    token = "eyJ" + "a" * 240
    uri = f"http://{token}@mlflow.example"
    exc = RuntimeError(f"API request to {uri}/api/2.0/mlflow/registered-models failed")
    line = error_line(exc, uri, limit=200)
    assert "aaaaaaaaaa" not in line and "***@mlflow.example" in line


def test_the_model_store_masks_the_token_of_its_registry_errors(monkeypatch):
    from service.model_store import RegistryUnavailable, resolve_alias

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(RegistryUnavailable) as raised:
        resolve_alias(f"http://{TOKEN}@127.0.0.1:9", "renewal", "champion")
    assert TOKEN not in str(raised.value)
