"""The operator console in a real browser: Debian's Chromium, headless, driven by Playwright,
against the whole suite (registry, coordinator, a dispatcher running the restaurant example,
the gateway serving the console).

An admin signs in, sees an execution submitted through the API appear, completes its
interaction from the console (after a JSON mistake and an API refusal shown next to their
fields) and sees it SUCCEEDED live; two executions fail, one is redriven from the dead-letter
page with a fixed input, the other by a bulk redrive counted first; the releases page shows the
active release, drift and workers. A viewer token then sees every page and no action, and the
API refuses its actions; last, the admin drains a worker and undrains it. No page logs an error
(a Content-Security-Policy violation would). A screenshot of every page is saved under
`.build/console-screenshots/` (and into `TPF_CONSOLE_SCREENSHOTS_DIR` when set: `docs/images`
refreshes the README's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from restaurant_approval.orders import DECISION_TYPE
from tests.e2e.test_gateway_example_flow import _decide, _decided_at, _pending, _status_when
from tests.e2e.test_gateway_routes import ADMIN_TOKEN, CP_BASE, Gateway, running_gateway
from tests.harness.services import StartService
from tests.support.example_suite import (
    EXAMPLE_SPEC,
    ControlPlane,
    control_plane,
    dispatcher_env,
    release_pipeline,
    request_json,
)
from tests.support.registry_client import VIEWER
from tpf_worker import WorkerIdentity

pytestmark = pytest.mark.e2e
__all__ = ["control_plane"]  # a fixture, used by name

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A laptop screen: the console must be readable at this size.
VIEWPORT = {"width": 1366, "height": 768}
TENANT = "restaurant-demo"
DISPATCHER = "console-dispatcher"
ACTIONS = re.compile(r"Complete|Redrive|Cancel execution|Drain|Count first")


class Stack:
    def __init__(self, gateway: Gateway, identity: WorkerIdentity) -> None:
        self.gateway = gateway
        self.identity = identity


@pytest.fixture
async def stack(
    control_plane: ControlPlane,
    start_service: StartService,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> AsyncIterator[Stack]:
    identity = await release_pipeline(control_plane, EXAMPLE_SPEC)
    start_service(
        "tpf_dispatcher",
        dispatcher_env(
            control_plane,
            dispatcher_id=DISPATCHER,
            pipeline_ids=[identity.pipeline_id],
            hosted=[EXAMPLE_SPEC],
        ),
    )
    async with running_gateway(
        control_plane, tmp_path, pytestconfig.rootpath, TPF_VIEWER_TOKEN=VIEWER
    ) as gateway:
        yield Stack(gateway, identity)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


def _chromium() -> str:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make system-deps` installs Debian's chromium package")
    return str(CHROMIUM)


class Screenshots:
    """Full-page screenshots under .build/console-screenshots (and an extra folder if set)."""

    def __init__(self, root: Path) -> None:
        self.folder = root / ".build" / "console-screenshots"
        self.folder.mkdir(parents=True, exist_ok=True)
        extra = os.environ.get("TPF_CONSOLE_SCREENSHOTS_DIR", "")
        self.extra = Path(extra) if extra else None
        self.taken: list[Path] = []

    async def take(self, page: Page, name: str) -> None:
        # Let polled lists and the live region settle before the picture.
        await page.wait_for_timeout(300)
        path = self.folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.extra / path.name)


def _watch_errors(page: Page, errors: list[str]) -> None:
    """Collect script errors and console errors (a CSP violation is one); the browser's own
    line for an HTTP error answer is left out: the test provokes API refusals on purpose."""
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"console error: {message.text}")

    page.on("console", console)


async def _sign_in(page: Page, base: str, token: str) -> None:
    """With the keyboard only: skip link, token, tenant, Enter; the new page's heading gets
    the focus, so a screen reader announces where the operator landed."""
    await page.goto(f"{base}/console/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Bearer token")).to_be_focused()
    await page.keyboard.type(token)
    await page.keyboard.press("Tab")
    await page.keyboard.type(TENANT)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Executions")).to_be_focused()


async def _submit(gateway: Gateway) -> str:
    body = request_json("submit")
    body["idempotencyKey"] = f"console-{uuid.uuid4()}"
    accepted = await gateway.post(f"{CP_BASE}/executions", json_body=body)
    assert accepted.status == 200, accepted.text
    execution_id: str = accepted.json()["executionId"]
    return execution_id


def _decision(order_id: str | None = None) -> dict[str, Any]:
    return {
        "accepted": {
            "orderId": order_id or str(uuid.uuid4()),
            "decidedAt": _decided_at(),
            "note": "Fixed from the console",
        }
    }


async def _fail(gateway: Gateway, execution_id: str) -> None:
    """Answer with an orderId that is not a UUID: the last step fails for good."""
    await _decide(
        gateway, execution_id, {"accepted": {"orderId": "nope", "decidedAt": _decided_at()}}
    )
    await _status_when(gateway, execution_id, "FAILED")


async def test_an_operator_triages_from_the_console(
    stack: Stack, browser: Browser, pytestconfig: pytest.Config
) -> None:
    gateway, base = stack.gateway, stack.gateway.base_url
    shots = Screenshots(pytestconfig.rootpath)
    errors: list[str] = []
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = await context.new_page()
    _watch_errors(page, errors)

    # Sign in; the token stays in session storage, never in the address.
    await _sign_in(page, base, ADMIN_TOKEN)
    assert ADMIN_TOKEN not in page.url
    stored = await page.evaluate("() => JSON.stringify(window.sessionStorage)")
    assert ADMIN_TOKEN in stored
    await expect(page.get_by_text("Signed in: admin")).to_be_visible()

    # An execution submitted through the API appears by itself, then waits for the restaurant.
    approved = await _submit(gateway)
    row = page.locator(f'tr[data-id="{approved}"]')
    await expect(row).to_be_visible(timeout=15_000)
    await expect(row.get_by_text("WAITING_EXTERNAL")).to_be_visible(timeout=20_000)
    await shots.take(page, "console-executions")

    # Complete its interaction from the console.
    await page.get_by_role("link", name="Pending interactions").click()
    await expect(page.get_by_role("heading", name="Pending interactions")).to_be_visible()
    card = page.locator("article", has_text=approved)
    complete = card.get_by_role("button", name="Complete…")
    # The dialog opens from the keyboard, takes the focus, and Escape gives it back.
    await complete.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Payload type")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(complete).to_be_focused()
    await complete.click()
    await expect(dialog).to_be_visible()
    response, payload_type = dialog.get_by_label("Response"), dialog.get_by_label("Payload type")
    assert await payload_type.input_value() == DECISION_TYPE  # the interaction's expected type
    await response.fill('{"accepted": ')
    await expect(dialog.get_by_text("Not valid JSON")).to_be_visible()
    await response.fill(json.dumps(_decision(), indent=2))
    await expect(dialog.get_by_text("Not valid JSON")).to_be_hidden()
    await payload_type.fill("com.example.RestaurantDecision")
    await dialog.get_by_role("button", name="Complete interaction").click()
    # The API's refusal is shown under the field it is about.
    await expect(page.locator("#complete-type-error")).to_contain_text(
        "Unsupported transition payload type"
    )
    await expect(payload_type).to_have_attribute("aria-invalid", "true")
    await shots.take(page, "console-complete-interaction")
    await payload_type.fill(DECISION_TYPE)
    await dialog.get_by_role("button", name="Complete interaction").click()
    await expect(dialog).to_be_hidden()
    await expect(card).to_be_hidden(timeout=10_000)

    # Its page follows it to SUCCEEDED live, with the history and the result.
    await page.goto(f"{base}/console/#/executions/{approved}")
    state = page.locator("section[aria-labelledby=state-heading]")
    await expect(state.locator(".badge").first).to_have_text("SUCCEEDED", timeout=30_000)
    timeline = page.locator("ol.timeline")
    await expect(timeline.get_by_text("by console", exact=True)).to_be_visible()
    await expect(timeline.get_by_text("interaction completed")).to_be_visible()
    await expect(page.locator("section[aria-labelledby=result-heading]")).to_contain_text(
        "APPROVED"
    )
    await expect(state).to_contain_text(stack.identity.release_version)
    await shots.take(page, "console-execution")

    # Two fail; one waits for a decision (for the read-only view later).
    fixed, bulk, waiting = await _submit(gateway), await _submit(gateway), await _submit(gateway)
    await _fail(gateway, fixed)
    await _fail(gateway, bulk)
    await _pending(gateway, waiting)

    # Redrive one with a fixed decision from the dead-letter page.
    await page.get_by_role("link", name="Dead letters").click()
    await expect(page.locator(f'tr[data-id="{fixed}"]')).to_be_visible(timeout=10_000)
    await expect(page.locator(f'tr[data-id="{bulk}"]')).to_be_visible()
    await shots.take(page, "console-dead-letters")
    await page.get_by_role("button", name=f"Redrive execution {fixed}").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Replace the input before it runs again").check()
    await dialog.get_by_label("Payload type").fill(DECISION_TYPE)
    await dialog.get_by_label("Fixed input").fill(json.dumps(_decision()))
    await dialog.get_by_role("button", name="Redrive", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator(f'tr[data-id="{fixed}"]')).to_be_hidden(timeout=10_000)

    # Bulk: count first, then redrive what was counted, with a progress bar.
    await page.locator("#bulk-reason").fill("replay after the incident")
    await page.get_by_role("button", name="Count first (dry run)").click()
    await expect(page.get_by_text("1 open dead letter match")).to_be_visible()
    await page.get_by_role("button", name="Redrive 1 execution").click()
    await expect(page.get_by_text("Done: redriven 1 of 1.")).to_be_visible(timeout=10_000)
    assert await page.locator("progress").get_attribute("value") == "1"
    await shots.take(page, "console-bulk-redrive")
    await _status_when(gateway, fixed, "SUCCEEDED")

    # Releases and workers: the active release, drift, workers; drain one.
    await page.get_by_role("link", name="Releases and workers").click()
    await page.get_by_label("Pipeline", exact=True).fill(stack.identity.pipeline_id)
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#active-release")).to_have_text(stack.identity.release_version)
    worker_row = page.locator("section[aria-labelledby=workers-heading] tbody tr").first
    await expect(worker_row).to_contain_text("HEALTHY")
    await expect(page.get_by_role("heading", name="Activation history")).to_be_visible()
    await shots.take(page, "console-releases")

    # A read-only token: every page, no action; the API refuses actions anyway.
    viewer_context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    viewer = await viewer_context.new_page()
    _watch_errors(viewer, errors)
    await _sign_in(viewer, base, VIEWER)
    await expect(viewer.get_by_text("Signed in: read-only")).to_be_visible()
    await expect(viewer.locator(f'tr[data-id="{waiting}"]')).to_be_visible(timeout=10_000)
    for section, ready in (
        ("Pending interactions", viewer.locator("article", has_text=waiting)),
        ("Dead letters", viewer.get_by_role("columnheader", name="Terminal reason")),
        ("Releases and workers", viewer.locator("#active-release")),
    ):
        await viewer.get_by_role("link", name=section).click()
        if section == "Releases and workers":
            await viewer.get_by_label("Pipeline", exact=True).fill(stack.identity.pipeline_id)
            await viewer.get_by_role("button", name="Show").click()
        await expect(ready).to_be_visible(timeout=10_000)
        assert await viewer.get_by_role("button", name=ACTIONS).count() == 0, section
    await expect(viewer.get_by_role("heading", name="Bulk redrive")).to_have_count(0)
    await viewer.goto(f"{base}/console/#/executions/{waiting}")
    await expect(viewer.get_by_role("heading", name="Waiting for")).to_be_visible(timeout=10_000)
    assert await viewer.get_by_role("button", name=ACTIONS).count() == 0
    await shots.take(viewer, "console-read-only")
    interaction = await _pending(gateway, waiting)
    refused = await gateway.post(
        f"/console/api/tenants/{TENANT}/interactions/{interaction['interactionId']}:complete",
        headers={"Authorization": f"Bearer {VIEWER}"},
        json_body={"responsePayload": {"payloadTypeId": DECISION_TYPE, "payload": "{}"}},
    )
    assert refused.status == 401

    # Back as admin: drain the dispatcher's worker.
    await page.get_by_role("button", name=re.compile(r"^Drain worker ")).first.click()
    await page.get_by_role("dialog").get_by_role("button", name="Drain worker").click()
    await expect(worker_row).to_contain_text("DRAINING", timeout=10_000)
    await page.get_by_role("button", name=re.compile(r"^Undrain worker ")).click()
    await expect(worker_row).to_contain_text("HEALTHY", timeout=10_000)

    await viewer_context.close()
    await context.close()
    assert errors == []
    print(f"console screenshots: {shots.folder}")
    assert len(shots.taken) == 7
