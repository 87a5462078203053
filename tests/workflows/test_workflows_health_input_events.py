"""A health input re-scores the account with the app's own workflow settings: its
``probability_drop_points`` decides whether the drop raises ``probability_dropped``."""

from __future__ import annotations

from sqlalchemy import select

from service.db.workflow_models import WebhookEvent


def dropped_events(stack, account_id: str) -> list[WebhookEvent]:
    with stack.factory() as session:
        return [
            e for e in session.scalars(select(WebhookEvent))
            if e.type == "probability_dropped" and e.payload.get("account_id") == account_id
        ]


def sponsor_lost(stack, account: str) -> None:
    """PUT an input that loses the sponsor and core process (the probability falls)."""
    with stack.client(stack.keys.admin) as client:
        put = client.put(f"/v1/accounts/{account}/health-inputs",
                         json={"exec_sponsor_active": False, "core_process_live": False})
    assert put.status_code == 200, put.text


def test_a_health_input_drop_fires_at_the_apps_threshold_not_the_environments(stack):
    frame = stack.frame
    sponsored = frame.loc[frame["exec_sponsor_active"].astype(bool), "account_id"]
    # one probability_dropped event per account and as_of: take accounts without one yet
    fresh = [str(a) for a in sponsored if not dropped_events(stack, str(a))]
    first, second = fresh[:2]
    try:
        stack.settings.probability_drop_points = 99.0  # the app's; the environment's is 10
        sponsor_lost(stack, first)
        assert dropped_events(stack, first) == []
        stack.settings.probability_drop_points = 0.5
        sponsor_lost(stack, second)
        events = dropped_events(stack, second)
        assert len(events) == 1
        assert events[0].payload["threshold_points"] == 0.5
        assert events[0].payload["drop_points"] >= 0.5
    finally:
        stack.settings.probability_drop_points = 10.0
