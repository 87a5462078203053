"""The account page's logs (manual inputs, interventions) say who recorded each entry: the
API key's name, with its CSM for a CSM key, the key's id in the tooltip; a revoked key keeps
its name and says so with its id; a key no longer in the store shows its id. The API's
``author`` stays the key's id (a contract)."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from service_harness import sign_in_csrf as sign_in

from service.db.engine import transaction
from service.db.models import ApiKey
from service.keys import create_key, revoke_key

ACCOUNT = "acc-00000"  # csm-a's (alice's)


def key_id(service, name: str) -> str:
    with service.factory() as session:
        return session.scalars(sa.select(ApiKey.id).where(ApiKey.name == name)).one()


def by_cells(page: str, section: str) -> list[tuple[str, str]]:
    """(text, title) of each "By" cell of the ``section`` log on the account page."""
    part = re.search(rf'<section id="{section}".*?</section>', page, re.S)
    assert part, f"no {section} section"
    return [(html.unescape(text), html.unescape(title)) for title, text in
            re.findall(r'<span class="author" title="([^"]*)">([^<]*)</span>', part.group(0))]


def record_through_the_page(service, key: str, playbook: str, score: str) -> None:
    csrf = sign_in(service, key)
    posted = service.client.post(f"/ui/accounts/{ACCOUNT}/interventions",
                                 data={"csrf_token": csrf, "playbook": playbook})
    assert posted.status_code in (200, 303), posted.text[:300]
    posted = service.client.post(f"/ui/accounts/{ACCOUNT}/health-inputs",
                                 data={"csrf_token": csrf, "csm_score": score})
    assert posted.status_code in (200, 303), posted.text[:300]


def test_the_logs_name_the_key_and_its_csm_with_the_id_in_the_tooltip(service):
    record_through_the_page(service, service.keys.csm_a, "qbr", "4")
    record_through_the_page(service, service.keys.admin, "training", "3")
    alice, ops = key_id(service, "alice"), key_id(service, "ops")
    page = service.client.get(f"/ui/accounts/{ACCOUNT}").text  # as the admin
    assert by_cells(page, "interventions") == [
        ("ops", f"API key {ops}"), ("alice (CSM csm-a)", f"API key {alice}")]
    assert by_cells(page, "inputs") == [
        ("ops", f"API key {ops}"), ("alice (CSM csm-a)", f"API key {alice}")]
    # The ids are in the tooltips only, never the cell's text.
    assert not re.search(rf">\s*({alice}|{ops})\s*<", page)


def test_the_api_keeps_the_key_id_as_the_author(service):
    record_through_the_page(service, service.keys.csm_a, "qbr", "4")
    alice = key_id(service, "alice")
    interventions = service.get(f"/v1/accounts/{ACCOUNT}/interventions", service.keys.admin)
    inputs = service.get(f"/v1/accounts/{ACCOUNT}/health-inputs", service.keys.admin)
    assert [i["author"] for i in interventions.json()["data"]] == [alice]
    assert [i["author"] for i in inputs.json()["data"]] == [alice]
    assert "alice" not in interventions.text.replace(alice, "")


def test_a_revoked_key_keeps_its_name_and_shows_its_id(service):
    record_through_the_page(service, service.keys.csm_a, "qbr", "4")
    alice = key_id(service, "alice")
    with transaction(service.factory) as session:
        revoke_key(session, alice)
    sign_in(service, service.keys.admin)
    page = service.client.get(f"/ui/accounts/{ACCOUNT}").text
    expected = (f"alice (CSM csm-a), revoked key {alice}", f"API key {alice} (revoked)")
    assert by_cells(page, "interventions") == [expected]
    assert by_cells(page, "inputs") == [expected]


def test_a_key_no_longer_in_the_store_shows_its_id(service):
    with transaction(service.factory) as session:
        carol, secret = create_key(session, "csm", "carol", "csm-a")
    answer = service.post(f"/v1/accounts/{ACCOUNT}/interventions", secret,
                          json={"playbook": "activation-push"})
    assert answer.status_code == 201, answer.text
    with transaction(service.factory) as session:
        session.execute(sa.delete(ApiKey).where(ApiKey.id == carol.id))
    sign_in(service, service.keys.admin)
    page = service.client.get(f"/ui/accounts/{ACCOUNT}").text
    assert by_cells(page, "interventions") == [
        (carol.id, f"API key {carol.id} (no longer in the key store)")]


def test_the_logs_swapped_in_after_recording_name_the_author_too(service):
    """htmx answers with the changed parts only; they must not fall back to the bare id."""
    csrf = sign_in(service, service.keys.csm_a)
    swapped = service.client.post(f"/ui/accounts/{ACCOUNT}/interventions",
                                  data={"csrf_token": csrf, "playbook": "qbr"},
                                  headers={"HX-Request": "true"})
    assert swapped.status_code == 200
    assert [t for t, _ in by_cells(swapped.text, "interventions")] == ["alice (CSM csm-a)"]
    swapped = service.client.post(f"/ui/accounts/{ACCOUNT}/health-inputs",
                                  data={"csrf_token": csrf, "csm_score": "2"},
                                  headers={"HX-Request": "true"})
    assert swapped.status_code == 200
    assert [t for t, _ in by_cells(swapped.text, "inputs")] == ["alice (CSM csm-a)"]
