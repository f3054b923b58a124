"""Typed Procore endpoint calls: each returns Procore's JSON as plain dicts and lists.

Paths, parameters and fields are those of ``/work/shared/procore-api.md`` (the team's notes,
with sources), checked against Procore's docs (``procore/documentation`` @06dad9d, "DOC") and
Procore's OpenAPI file as mirrored in OAS (``data/endpoint-details/*.json``); each function says
what is CONFIRMED and where, and what stays a GUESS. The two unconfirmed read-side shapes are
kept in one function each: `read_private_list` (the private contract's accessors) and
`commitments_access_level` (a permission template's Commitments level). Ids in query strings
and paths are 64-bit ints (DOC tutorials/tutorial_mpz.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from procore.client import ProcoreClient
from procore.errors import ProcoreAuthError, ProcoreError

# Procore's Commitments tool levels, as spelled in its UI and API, → this app's levels.
_ACCESS_LEVEL_NAMES: dict[str, str] = {
    "none": "none",
    "no access": "none",
    "read_only": "read_only",
    "read only": "read_only",
    "readonly": "read_only",
    "standard": "standard",
    "admin": "admin",
}
_COMMITMENTS_TOOL_KEYS = ("commitments", "commitment", "contracts")


def updated_between(since: datetime, until: datetime) -> str:
    """A ``filters[updated_at]`` range ``A...B`` in UTC ISO 8601 (``Z``) (CONFIRMED DOC
    tutorials/filtering_on_list_actions.md: ISO 8601, a range with ``...``)."""

    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return f"{iso(since)}...{iso(until)}"


async def list_projects(client: ProcoreClient) -> list[dict[str, Any]]:
    """The company's projects the service account can reach (``GET /rest/v1.0/projects``)."""
    return await client.get_list(
        "/rest/v1.0/projects",
        endpoint="GET /rest/v1.0/projects",
        params={"company_id": client.company_id},
    )


async def show_project(client: ProcoreClient, project_id: int) -> dict[str, Any]:
    """One project: ``id``, ``name``, ``project_number``, ``company{id,name}``…"""
    return await client.get(
        f"/rest/v1.0/projects/{project_id}",
        endpoint="GET /rest/v1.0/projects/{id}",
        params={"company_id": client.company_id},
        project_id=project_id,
    )


async def list_billing_periods(
    client: ProcoreClient, project_id: int, *, updated_at: str | None = None
) -> list[dict[str, Any]]:
    """The project's billing periods; ``updated_at`` is a `updated_between` range."""
    params: dict[str, Any] = {}
    if updated_at:
        params["filters[updated_at]"] = updated_at
    return await client.get_list(
        f"/rest/v1.0/projects/{project_id}/billing_periods",
        endpoint="GET /rest/v1.0/projects/{id}/billing_periods",
        params=params,
        project_id=project_id,
    )


async def list_commitments(
    client: ProcoreClient, project_id: int, kind: str, *, updated_at: str | None = None
) -> list[dict[str, Any]]:
    """``kind`` is ``work_order_contracts`` (subcontracts) or ``purchase_order_contracts``.

    CONFIRMED DOC tutorials/filtering_on_list_actions.md: ``GET /rest/v1.0/work_order_contracts
    ?project_id=`` (and ``/purchase_order_contracts``) with ``filters[updated_at]`` ranges.
    Read with ``view=extended`` (OAS: ``compact|extended``). GUESS (DOC says nothing of the
    list's fields; the OAS list schema is empty): the extended list carries ``private`` and
    ``invoice_contacts`` as the show does, so no per-contract show is needed. DOC
    erp_integration/erp_events_dictionary.md (``create_commitment``) shows Procore's own
    commitment JSON with ``private`` and ``vendor{id, company}``, but no ``invoice_contacts``.
    """
    if kind not in ("work_order_contracts", "purchase_order_contracts"):
        raise ValueError(f"unknown commitment kind {kind!r}")
    params: dict[str, Any] = {"project_id": project_id, "view": "extended"}
    if updated_at:
        params["filters[updated_at]"] = updated_at
    return await client.get_list(
        f"/rest/v1.0/{kind}",
        endpoint=f"GET /rest/v1.0/{kind}",
        params=params,
        project_id=project_id,
    )


async def read_private_list(
    client: ProcoreClient, project_id: int, commitment_id: int
) -> list[dict[str, Any]] | None:
    """A private commitment's accessors as ``[{id, email}]``; None when unknown (fail closed).

    GUESS (notes §5; DOC says nothing; OAS gives ``accessor_ids`` only on the v2.0 writes and
    leaves the show's ``data`` unexpanded): no v1.0 response lists accessors; we read
    ``GET /rest/v2.0/companies/{cid}/projects/{pid}/commitment_contracts/{id}?view=extended``
    and take ``data.accessors`` (user objects, ids possibly strings, the email under ``login``,
    ``email_address`` or ``email``). Any failure but bad credentials, or an absent field,
    gives None.
    """
    try:
        body = await client.get(
            f"/rest/v2.0/companies/{client.company_id}/projects/{project_id}"
            f"/commitment_contracts/{commitment_id}",
            endpoint="GET /rest/v2.0/companies/{cid}/projects/{pid}/commitment_contracts/{id}",
            params={"view": "extended"},
            project_id=project_id,
        )
    except ProcoreAuthError:
        raise
    except ProcoreError:  # 403, 404, 5xx past the retries, odd JSON: unknown, fail closed
        return None
    data = body.get("data") if isinstance(body, dict) else None
    accessors = data.get("accessors") if isinstance(data, dict) else None
    if not isinstance(accessors, list):
        return None
    members: list[dict[str, Any]] = []
    for accessor in accessors:
        if not isinstance(accessor, dict):
            return None
        try:
            member_id = int(accessor["id"])
        except (KeyError, TypeError, ValueError):
            return None
        email = next(
            (accessor[key] for key in ("login", "email_address", "email") if accessor.get(key)),
            "",
        )
        members.append({"id": member_id, "email": str(email)})
    return members


async def list_project_users(
    client: ProcoreClient, project_id: int, *, inactive: bool = False
) -> list[dict[str, Any]]:
    """The project's users (``view=normal``); ``inactive`` reads ``/users/inactive`` instead.
    CONFIRMED DOC tutorials/tutorial_user_permissions.md: List Project Users gives each user's
    ``permission_template`` (``id``, ``name``)."""
    suffix = "/inactive" if inactive else ""
    return await client.get_list(
        f"/rest/v1.0/projects/{project_id}/users{suffix}",
        endpoint=f"GET /rest/v1.0/projects/{{id}}/users{suffix}",
        params={"view": "normal"},
        project_id=project_id,
    )


async def list_permission_templates(client: ProcoreClient) -> list[dict[str, Any]]:
    """The company's permission templates with ``user_access_levels`` (needs Directory access;
    a 403 raises `ProcoreForbidden`). GUESS: ``view=with_permissions`` adds
    ``user_access_levels`` to the list (OAS documents the field on the single-template show
    ``…/permission_templates/{id}`` only; the list schema names ``id, name, project_specific,
    type, category``)."""
    return await client.get_list(
        f"/rest/v1.0/companies/{client.company_id}/permission_templates",
        endpoint="GET /rest/v1.0/companies/{cid}/permission_templates",
        params={"view": "with_permissions"},
    )


def commitments_access_level(template: dict[str, Any]) -> str | None:
    """A permission template's Commitments level (``none``/``read_only``/``standard``/
    ``admin``), or None when it cannot be told (the caller fails closed).

    CONFIRMED DOC tutorials/tutorial_user_permissions.md: four levels, None, Read-only,
    Standard and Admin; OAS: ``user_access_levels`` is an object, "user access levels for
    active tools". GUESS (notes §6; DOC says nothing of the templates endpoints): it is keyed
    by tool name; the Commitments entry is a level name (``"admin"``, ``"Read Only"``) or an
    object with ``name``, as DOC tutorials/tutorial_correspondence.md writes a tool's level
    (``{"id": 2, "name": "Read Only"}``). Keys are compared case-insensitively.
    """
    levels = template.get("user_access_levels")
    if not isinstance(levels, dict):
        return None
    by_tool = {str(key).strip().lower(): value for key, value in levels.items()}
    value = next((by_tool[key] for key in _COMMITMENTS_TOOL_KEYS if key in by_tool), None)
    if isinstance(value, dict):
        value = value.get("name")
    if not isinstance(value, str):
        return None
    return _ACCESS_LEVEL_NAMES.get(value.strip().lower().replace("-", " "))


async def list_requisitions(
    client: ProcoreClient,
    project_id: int,
    *,
    updated_at: str | None = None,
    ids: Iterable[int] | None = None,
) -> list[dict[str, Any]]:
    """Requisition headers (v1.1 list, with ``summary`` and ``attachments``), optionally only
    those updated in a `updated_between` range or with the given ``ids``.

    CONFIRMED DOC tutorials/tutorial_requisitions.md: subcontractor invoices keep the
    requisition names in paths and fields (it names the v1.0 list; v1.1 and its ``summary``,
    ``attachments[]{id,url,filename,content_type}`` are OAS RestV11RequisitionsGet); DOC
    tutorials/filtering_on_list_actions.md: an array filter is ``filters[id][]=…`` repeated.
    The list defaults to 30 a page (OAS); we ask for the largest."""
    params: list[tuple[str, Any]] = [("project_id", project_id)]
    if updated_at:
        params.append(("filters[updated_at]", updated_at))
    if ids is not None:
        params.extend(("filters[id][]", requisition_id) for requisition_id in ids)
    return await client.get_list(
        "/rest/v1.1/requisitions",
        endpoint="GET /rest/v1.1/requisitions",
        params=params,
        project_id=project_id,
    )


async def show_requisition(
    client: ProcoreClient, project_id: int, requisition_id: int, *, view: str = "extended"
) -> dict[str, Any]:
    """One requisition; ``view=extended`` adds ``items`` (the G703 lines: OAS
    RestV11RequisitionsIdGet, field names as DOC tutorials/tutorial_requisitions.md shows for
    contract items), ``summary_text`` and more."""
    return await client.get(
        f"/rest/v1.1/requisitions/{requisition_id}",
        endpoint="GET /rest/v1.1/requisitions/{id}",
        params={"project_id": project_id, "view": view},
        project_id=project_id,
    )


async def requisition_detail(
    client: ProcoreClient, project_id: int, requisition_id: int
) -> list[dict[str, Any]]:
    """A requisition's G703 lines (``GET /rest/v1.0/requisitions/{id}/detail``: DOC
    tutorials/tutorial_requisitions.md lists "Show Detail for Subcontractor Invoice" but not its
    answer). GUESS: the notes' PYSDK shape, a list of lines (or one inside ``{"data": …}``);
    the line fields are those DOC shows for contract items."""
    body = await client.get(
        f"/rest/v1.0/requisitions/{requisition_id}/detail",
        endpoint="GET /rest/v1.0/requisitions/{id}/detail",
        params={"project_id": project_id},
        project_id=project_id,
    )
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body = body["data"]
    return body if isinstance(body, list) else []


async def my_permissions(client: ProcoreClient, project_id: int) -> dict[str, Any]:
    """The service account's own tools and levels on a project, for ``procore check``:
    ``{"tools": [{name, friendly_name, user_access_level{id,name}, permitted_actions}]}``."""
    body = await client.get(
        "/rest/v1.0/settings/permissions",
        endpoint="GET /rest/v1.0/settings/permissions",
        params={"project_id": project_id},
        project_id=project_id,
    )
    return body if isinstance(body, dict) else {"tools": body if isinstance(body, list) else []}


# ---------------------------------------------------------------------------------------------
# Webhooks (v2.0, notes §7). Scope: the company, or one project of it.
#
# Checked against Procore's docs (procore/documentation @06dad9d) and Procore's OpenAPI file
# (as mirrored in OAS ``data/endpoint-details/RestV20Companies…Webhooks*.json``):
# - CONFIRMED (DOC announcements/new_rest_v2_version.md): v2.0 paths are scoped
#   ``/rest/v2.0/companies/{cid}[/projects/{pid}]/…``, bodies come in ``{"data": …}``, ids are
#   strings, lists default to 10 and allow 100 per page.
# - CONFIRMED (OAS …WebhooksHooksPost/Patch): a hook is ``{id, status: active|disabled,
#   payload_version, namespace, destination_url, destination_headers, trigger_count, …}`` and
#   ``destination_headers.Authorization`` comes back MASKED (only its last 5 characters shown):
#   compare it with `authorization_shown_matches`, never for equality.
# - CONFIRMED (OAS …TriggersBulkPost/BulkDelete): the bulk bodies are bare JSON arrays,
#   ``[{resource_name, event_type}]`` to create and ``["<trigger id>", …]`` to delete; at most
#   500 a call (DOC plan_your_app/webhooks_api.md lists only the v1.0 single-trigger calls).
# - CONFIRMED (DOC plan_your_app/webhooks_api.md): namespaces are lowercase a-z, 0-9 and dashes.

WEBHOOK_PAYLOAD_VERSION = "v2.0"
MAX_TRIGGERS_PER_BULK_CALL = 500
MASKED_AUTHORIZATION_TAIL = 5  # OAS: "masked to only show the last 5 characters"


def authorization_shown_matches(shown: Any, secret: str) -> bool:
    """Whether the (masked) ``destination_headers.Authorization`` Procore shows for a hook is
    ``secret``: equal, or ending with the same last `MASKED_AUTHORIZATION_TAIL` characters
    (GUESS: the mask character; only the tail is compared)."""
    if not isinstance(shown, str) or not shown or len(secret) < MASKED_AUTHORIZATION_TAIL:
        return isinstance(shown, str) and shown == secret
    return shown == secret or (
        len(shown) >= MASKED_AUTHORIZATION_TAIL
        and shown[-MASKED_AUTHORIZATION_TAIL:] == secret[-MASKED_AUTHORIZATION_TAIL:]
    )


def _hooks_path(client: ProcoreClient, project_id: int | None) -> str:
    scope = f"/rest/v2.0/companies/{client.company_id}"
    if project_id is not None:
        scope += f"/projects/{project_id}"
    return scope + "/webhooks/hooks"


def _hooks_endpoint(project_id: int | None, suffix: str = "") -> str:
    scope = "/rest/v2.0/companies/{cid}" + ("/projects/{pid}" if project_id is not None else "")
    return f"{scope}/webhooks/hooks{suffix}"


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) and "data" in body else body


async def list_hooks(
    client: ProcoreClient, project_id: int | None = None, *, namespace: str | None = None
) -> list[dict[str, Any]]:
    """The hooks of the company (or of one project), optionally of one ``namespace``:
    ``{id, namespace, destination_url, destination_headers, payload_version, …}``."""
    params = {"namespace": namespace} if namespace else None
    return await client.get_list(
        _hooks_path(client, project_id),
        endpoint="GET " + _hooks_endpoint(project_id),
        params=params,
        project_id=project_id,
        per_page=client.config.per_page_v2,
    )


async def create_hook(
    client: ProcoreClient,
    project_id: int | None,
    *,
    namespace: str,
    destination_url: str,
    destination_headers: dict[str, str],
) -> dict[str, Any]:
    """Create a hook (v2.0 body ``{payload_version, namespace, destination_url,
    destination_headers}``); the created hook."""
    body = await client.send(
        "POST",
        _hooks_path(client, project_id),
        endpoint="POST " + _hooks_endpoint(project_id),
        json_body={
            "payload_version": WEBHOOK_PAYLOAD_VERSION,
            "namespace": namespace,
            "destination_url": destination_url,
            "destination_headers": destination_headers,
        },
        project_id=project_id,
    )
    return _data(body)  # type: ignore[no-any-return]


async def update_hook(
    client: ProcoreClient,
    project_id: int | None,
    hook_id: int,
    *,
    destination_url: str,
    destination_headers: dict[str, str],
) -> dict[str, Any]:
    """Point an existing hook at ``destination_url`` with these headers and make it ``active``
    again (Procore disables a hook after repeated failed deliveries: DOC
    api_essentials/troubleshooting.md; OAS …WebhooksHooksIdPatch takes ``status``)."""
    body = await client.send(
        "PATCH",
        f"{_hooks_path(client, project_id)}/{hook_id}",
        endpoint="PATCH " + _hooks_endpoint(project_id, "/{id}"),
        json_body={
            "payload_version": WEBHOOK_PAYLOAD_VERSION,
            "destination_url": destination_url,
            "destination_headers": destination_headers,
            "status": "active",
        },
        project_id=project_id,
    )
    return _data(body)  # type: ignore[no-any-return]


async def delete_hook(client: ProcoreClient, project_id: int | None, hook_id: int) -> None:
    """Delete a hook and its triggers."""
    await client.send(
        "DELETE",
        f"{_hooks_path(client, project_id)}/{hook_id}",
        endpoint="DELETE " + _hooks_endpoint(project_id, "/{id}"),
        project_id=project_id,
    )


async def list_triggers(
    client: ProcoreClient, project_id: int | None, hook_id: int
) -> list[dict[str, Any]]:
    """A hook's triggers: ``{id, resource_name, event_type}``."""
    return await client.get_list(
        f"{_hooks_path(client, project_id)}/{hook_id}/triggers",
        endpoint="GET " + _hooks_endpoint(project_id, "/{id}/triggers"),
        project_id=project_id,
        per_page=client.config.per_page_v2,
    )


async def create_triggers(
    client: ProcoreClient,
    project_id: int | None,
    hook_id: int,
    triggers: Iterable[tuple[str, str]],
) -> None:
    """Create (resource name, event type) triggers on a hook, up to 500 per bulk call
    (``POST …/hooks/{id}/triggers/bulk`` with ``[{resource_name, event_type}, …]``)."""
    wanted = [{"resource_name": name, "event_type": event} for name, event in triggers]
    await _bulk_triggers(client, "POST", project_id, hook_id, wanted)


async def delete_triggers(
    client: ProcoreClient, project_id: int | None, hook_id: int, trigger_ids: Iterable[int | str]
) -> None:
    """Delete triggers of a hook, up to 500 per bulk call (``DELETE …/triggers/bulk`` with the
    ids as a JSON array of strings)."""
    ids = [str(trigger_id) for trigger_id in trigger_ids]
    await _bulk_triggers(client, "DELETE", project_id, hook_id, ids)


async def _bulk_triggers(
    client: ProcoreClient, method: str, project_id: int | None, hook_id: int, body: list[Any]
) -> None:
    """``method …/hooks/{hook_id}/triggers/bulk`` with ``body`` (a JSON array), in calls of at
    most `MAX_TRIGGERS_PER_BULK_CALL` entries each (none for an empty ``body``)."""
    for start in range(0, len(body), MAX_TRIGGERS_PER_BULK_CALL):
        await client.send(
            method,
            f"{_hooks_path(client, project_id)}/{hook_id}/triggers/bulk",
            endpoint=method + " " + _hooks_endpoint(project_id, "/{id}/triggers/bulk"),
            json_body=body[start : start + MAX_TRIGGERS_PER_BULK_CALL],
            project_id=project_id,
        )


async def list_webhook_resources(client: ProcoreClient) -> list[dict[str, Any]]:
    """The resources triggers may name: ``{name, actions}``
    (``GET /rest/v2.0/companies/{cid}/webhooks/resources?payload_version=``)."""
    body = await client.get(
        f"/rest/v2.0/companies/{client.company_id}/webhooks/resources",
        endpoint="GET /rest/v2.0/companies/{cid}/webhooks/resources",
        params={"payload_version": WEBHOOK_PAYLOAD_VERSION},
    )
    data = _data(body)
    return data if isinstance(data, list) else []


async def show_commitment(
    client: ProcoreClient, project_id: int, kind: str, commitment_id: int
) -> dict[str, Any]:
    """One work order / purchase order contract (v1.0 show: ``private``, ``invoice_contacts``,
    ``vendor``…); `ProcoreNotFound` when it is gone."""
    if kind not in ("work_order_contracts", "purchase_order_contracts"):
        raise ValueError(f"unknown commitment kind {kind!r}")
    return await client.get(
        f"/rest/v1.0/{kind}/{commitment_id}",
        endpoint=f"GET /rest/v1.0/{kind}/{{id}}",
        params={"project_id": project_id},
        project_id=project_id,
    )
