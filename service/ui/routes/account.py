"""The account view and its three forms: manual inputs, lever what-if, interventions.

Each form calls the API route it stands for (PUT health-inputs, POST what-if, POST
interventions) in-process, behind the same role dependency. With htmx the answer is the
changed parts of the page (an intervention also swaps the latest survey's follow-up status);
without JavaScript the form posts and the page reloads.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Form, Path, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from service.api.health_inputs import put_health_inputs
from service.api.interventions import post_intervention
from service.api.schemas import HealthInputIn
from service.api.what_if import post_what_if
from service.api.workflow_schemas import InterventionIn, LeverIn, WhatIfIn
from service.auth import CsmOrAdmin, Reader, visible_account
from service.context import Ctx, ServiceContext
from service.keys import Principal
from service.problems import ProblemError
from service.ui.account_view import account_context
from service.ui.api_calls import call_route
from service.ui.routes import signed_in_router
from service.ui.templating import render, ui_base
from service.workflows.install import WorkflowContext, Workflows

router = signed_in_router()
AccountId = Annotated[str, Path(min_length=1, max_length=200)]
Choice = Annotated[str, Form(max_length=10)]
NOTHING_CHOSEN = ("nothing to record: choose the executive sponsor, the core process or a "
                  "CSM score, or write a note")


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _account_url(request: Request, account_id: str) -> str:
    from urllib.parse import quote

    return f"{ui_base(request)}/accounts/{quote(account_id, safe='')}"


def _invalid(exc: ValidationError, fallback: str) -> ProblemError:
    messages = [e.get("msg", "") for e in exc.errors()]
    text = "; ".join(m.removeprefix("Value error, ") for m in messages if m) or fallback
    return ProblemError(422, "validation-error", text)


@router.get("/accounts/{account_id}")
def account_page(request: Request, account_id: AccountId, principal: Reader, ctx: Ctx,
                 workflows: Workflows) -> Response:
    """Score, latest survey, history, drivers, activity, inputs, what-if and interventions
    of one account (404 for an account the key may not see, as on the API)."""
    view = account_context(ctx, principal, workflows, account_id)
    return render(request, "account.html", **view, what_if=None, active="risk")


def _flag(value: str, name: str) -> bool | None:
    if value in ("", "unchanged"):
        return None
    if value in ("yes", "no"):
        return value == "yes"
    raise ProblemError(422, "validation-error", f"{name}: choose yes, no or no change")


@router.post("/accounts/{account_id}/health-inputs")
def record_inputs(
    request: Request, account_id: AccountId, principal: CsmOrAdmin, ctx: Ctx,
    workflows: Workflows, exec_sponsor_active: Choice = "", core_process_live: Choice = "",
    csm_score: Choice = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """PUT /v1/accounts/{id}/health-inputs: stored with its author, re-scored at once."""
    before = visible_account(ctx.cache, principal, account_id).probability
    if csm_score not in ("", "unchanged", "1", "2", "3", "4", "5"):
        raise ProblemError(422, "validation-error", "CSM score: choose 1 to 5 or no change")
    sponsor = _flag(exec_sponsor_active, "Executive sponsor")
    process = _flag(core_process_live, "Core process")
    score = int(csm_score) if csm_score.isdigit() else None
    if sponsor is None and process is None and score is None and not note.strip():
        # The API's message names its JSON fields; the form's user knows its labels.
        raise ProblemError(422, "validation-error", NOTHING_CHOSEN)
    try:
        body = HealthInputIn(
            exec_sponsor_active=sponsor, core_process_live=process, csm_score=score,
            note=note.strip() or None,
        )
    except ValidationError as exc:
        raise _invalid(exc, "give at least one input") from None
    result = call_route(put_health_inputs, account_id=account_id, body=body,
                        principal=principal, ctx=ctx, workflows=workflows)
    if not _is_htmx(request):
        return RedirectResponse(_account_url(request, account_id), status_code=303)
    after = result["renewal"].get("probability", before)
    view = account_context(ctx, principal, workflows, account_id)
    return render(request, "partials/after_input.html", **view,
                  notice={"before": before, "after": after})


def _lever_requests(form: Any) -> list[LeverIn]:
    chosen = [v for v in form.getlist("lever") if isinstance(v, str)]
    levers = []
    for name in dict.fromkeys(chosen):
        raw = form.get(f"value_{name}")
        value: float | None = None
        if isinstance(raw, str) and raw.strip():
            try:
                value = float(raw)
            except ValueError:
                raise ProblemError(422, "validation-error", f"{name}: not a number") from None
            if not math.isfinite(value):
                raise ProblemError(422, "validation-error", f"{name}: not a number")
        try:
            levers.append(LeverIn(name=name, value=value))  # type: ignore[arg-type]
        except ValidationError as exc:
            raise _invalid(exc, f"unknown lever {name!r}") from None
    return levers


def _what_if(ctx: ServiceContext, principal: Principal, workflows: WorkflowContext,
             account_id: str, levers: list[LeverIn]) -> dict[str, Any] | None:
    visible_account(ctx.cache, principal, account_id)  # 404 first, even with no lever
    if not levers:
        return None
    try:
        body = WhatIfIn(levers=levers)
    except ValidationError as exc:
        raise _invalid(exc, "too many levers") from None
    result = call_route(post_what_if, account_id=account_id, body=body, principal=principal,
                        ctx=ctx, workflows=workflows)
    # The inputs the levers change, with their push; the other drivers only shift through
    # interactions in the trees (same words before and after), which reads as noise.
    result["inputs_changed"] = [d for d in result["drivers_moved"]
                                if d["description_before"] != d["description_after"]]
    return result


@router.post("/accounts/{account_id}/what-if")
async def what_if(request: Request, account_id: AccountId, principal: Reader, ctx: Ctx,
                  workflows: Workflows) -> Response:
    """POST /v1/accounts/{id}/what-if with the ticked levers: nothing is stored."""
    form = await request.form()
    levers = _lever_requests(form)
    result = await run_in_threadpool(_what_if, ctx, principal, workflows, account_id, levers)
    if _is_htmx(request):
        return render(request, "partials/whatif_result.html", what_if=result)
    view = await run_in_threadpool(account_context, ctx, principal, workflows, account_id)
    chosen = {lv.name: lv.value for lv in levers}
    return render(request, "account.html", **view, what_if=result, chosen=chosen,
                  active="risk")


@router.post("/accounts/{account_id}/interventions")
def record_intervention(
    request: Request, account_id: AccountId, principal: CsmOrAdmin, ctx: Ctx,
    workflows: Workflows, playbook: Annotated[str, Form(max_length=100)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """POST /v1/accounts/{id}/interventions: who and when are the key and now."""
    try:
        body = InterventionIn(playbook=playbook.strip(), note=note.strip() or None)
    except ValidationError:
        raise ProblemError(
            422, "validation-error",
            "playbook: a short name of letters, digits, spaces, '.', '_' or '-'",
        ) from None
    call_route(post_intervention, account_id=account_id, body=body, principal=principal,
               ctx=ctx, workflows=workflows)
    if not _is_htmx(request):
        return RedirectResponse(_account_url(request, account_id), status_code=303)
    view = account_context(ctx, principal, workflows, account_id)
    # The survey part too (out of band): a pending follow-up now reads "Followed up".
    return render(request, "partials/after_intervention.html", **view,
                  recorded=body.playbook)
