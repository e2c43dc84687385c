"""Drive the Airflow 3.3 web UI (React SPA of ``airflow api-server``) with Playwright (sync API).

Small helpers for a deployment test: log in with the simple auth manager, trigger a Dag
through the Trigger dialog's param form, and wait until the run is green in the grid.
Every check reads the UI itself, not the REST API.

    with open_browser() as page:
        login(page, base_url, "admin", password)
        titles, run_id = trigger_with_params(page, base_url, "music_recommendation",
                                             {"top_n": 3}, "trigger_form.png")
        wait_for_run_success_in_grid(page, base_url, "music_recommendation", run_id,
                                     timeout_s=1800, screenshot_path="grid.png")

Selectors (found by reading the UI's DOM in Airflow 3.3.2; see the helpers for details):

* Login page: fields by label ("Username", "Password"), button by role/name ("Sign in").
* Dag page: ``data-testid="trigger-dag-button"`` (the "Trigger" button, aria-label "Trigger Dag")
  and ``data-testid="trigger-dag-submit"`` (the dialog's "Trigger" button); the dialog by role.
* Param form: every param is a Chakra field (``[data-scope=field][data-part=root]``, role group)
  whose control carries ``name``/``id`` ``element_<param key>`` -- the form's own naming, stable
  across titles. The visible title is that field's ``<label>``. Labels are not linked to the
  inputs with ``for`` for every widget, so ``get_by_label`` cannot be used for all of them.
* Grid: each run column has ``data-run-id="<run id>"``; its bar is the link to
  ``.../runs/<run id>/`` (task cells link to ``.../tasks/<task>``). Hovering the bar shows
  ``data-testid="basic-tooltip"`` with "Run ID: ...", "State: Success", ... (English UI);
  the bar's colour comes from the same state. The run page header shows the run id as a
  heading next to ``data-testid="state-badge"``.

Airflow 3.3.2 UI pitfall: a param whose type does not allow ``null`` is *required*, and the
form treats an empty string as missing, so ``Param("", type="string")`` keeps the Trigger
button disabled until it is filled. :func:`trigger_with_params` then fails with a message that
names the empty required fields (fill them via ``overrides`` or declare ``type=["null", "string"]``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from urllib.parse import unquote

from playwright.sync_api import Locator, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]
_FIELD = '[data-scope="field"][data-part="root"]'
_LABEL = 'label[data-scope="field"][data-part="label"]'  # the field's title, not a switch's own label
_PARAM_CONTROL = '[name^="element_"], [id^="element_"]'
_RUN_BAR = '[data-run-id] a[href*="/runs/"]:not([href*="/tasks/"])'


@contextlib.contextmanager
def open_browser(width: int = 1400, height: int = 900, timeout_ms: int = 30_000) -> Iterator[Page]:
    """Launch headless Debian Chromium (fresh profile) and yield a Page; always closes it."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()


def login(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in on the simple auth manager's login page and wait for the SPA to load."""
    base_url = base_url.rstrip("/")
    page.goto(f"{base_url}/auth/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    try:
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=20_000)
        page.get_by_test_id("nav-sidebar").wait_for()  # only the logged-in SPA has it
    except Exception as exc:
        text = " ".join(page.locator("body").inner_text().split())[:300]
        raise AssertionError(f"login as {username!r} failed; page at {page.url} says: {text}") from exc


def _field(dialog: Locator, key: str) -> Locator:
    """The form field of param ``key`` (by its ``element_<key>`` control, else by title)."""
    by_key = dialog.locator(_FIELD).filter(
        has=dialog.page.locator(f'[name="element_{key}"], [id="element_{key}"]'))
    if by_key.count():
        return by_key.first
    by_title = dialog.locator(_FIELD).filter(
        has=dialog.page.locator(_LABEL, has_text=re.compile(rf"^\s*{re.escape(key)}\s*\*?\s*$")))
    if by_title.count():
        return by_title.first
    raise AssertionError(f"param {key!r} not found in the trigger form")


def _set_field(field: Locator, value) -> None:
    """Set one param field according to its widget (number, select, switch, JSON, text)."""
    page = field.page
    if field.get_by_role("spinbutton").count():  # integer / number
        box = field.get_by_role("spinbutton")
        box.fill(str(value))
        box.press("Tab")  # the number input commits on blur
        actual = box.input_value()
        if float(actual or "nan") != float(value):
            raise AssertionError(f"number field shows {actual!r} instead of {value!r}")
    elif field.get_by_role("combobox").count():  # enum (react-select)
        box = field.get_by_role("combobox").first
        box.click()
        box.fill(str(value))
        page.get_by_role("option", name=str(value), exact=True).click()
    elif field.get_by_role("switch").count() or field.get_by_role("checkbox").count():  # boolean
        switch = field.locator('input[type="checkbox"]').first
        if switch.is_checked() != bool(value):
            field.locator('[data-part="control"]').first.click()
    elif field.locator(".monaco-editor").count():  # object / array: JSON editor
        field.locator(".monaco-editor .view-lines").first.click()
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.press("Delete")
        # insert_text avoids the editor's auto-closing of brackets and quotes
        page.keyboard.insert_text(value if isinstance(value, str) else json.dumps(value))
        field.locator(_LABEL).first.click()  # blur
    else:  # string, date, textarea
        box = field.locator("input:not([type=hidden]), textarea").first
        box.fill("" if value is None else str(value))
        box.press("Tab")


def _param_titles(dialog: Locator) -> list[str]:
    """Visible titles (labels) of the param fields, required marker removed."""
    fields = dialog.locator(_FIELD).filter(has=dialog.page.locator(_PARAM_CONTROL))
    return [t.replace("*", "").strip() for t in fields.locator(_LABEL).all_inner_texts()]


def _form_problems(dialog: Locator) -> str:
    """Describe why the Trigger button is disabled: invalid fields and empty required ones."""
    problems = []
    for field in dialog.locator(_FIELD).filter(has=dialog.page.locator(_PARAM_CONTROL)).all():
        title = field.locator(_LABEL).first.inner_text().replace("*", "").strip()
        if field.get_attribute("data-invalid") is not None:
            errors = " ".join(field.locator('[data-part="error-text"]').all_inner_texts())
            problems.append(f"{title}: invalid {errors}".strip())
        elif field.locator(f"{_LABEL}[data-required]").count():
            box = field.locator('input[name^="element_"]:not([type=hidden])')
            if box.count() and box.first.input_value() == "":
                problems.append(f"{title}: required and empty (the form counts '' as missing)")
    return "; ".join(problems) or "no field is flagged; see the screenshot"


def trigger_with_params(page: Page, base_url: str, dag_id: str, overrides: dict,
                        screenshot_path: str, expect_titles: list[str] | None = None
                        ) -> tuple[list[str], str | None]:
    """Trigger ``dag_id`` from its Trigger dialog with the params in ``overrides`` changed.

    ``overrides`` maps param keys (or titles) to values. Returns the visible param titles and
    the new run's id, read from the run page the UI opens after triggering (None if the UI
    did not navigate there). A paused Dag is unpaused by the dialog's default checkbox.
    Raises AssertionError when a title in ``expect_titles`` is missing, the Trigger button
    stays disabled, or the UI reports an error.
    """
    base_url = base_url.rstrip("/")
    page.goto(f"{base_url}/dags/{dag_id}")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog").filter(has=page.get_by_test_id("trigger-dag-submit"))
    dialog.wait_for()
    # params are fetched after the dialog opens; wait until the form shows them
    try:
        dialog.locator(_FIELD).filter(has=page.locator(_PARAM_CONTROL)).first.wait_for()
    except Exception as exc:
        raise AssertionError(f"the Trigger dialog of {dag_id} shows no param form") from exc
    titles = _param_titles(dialog)
    missing = [t for t in (expect_titles or []) if t not in titles]
    if missing:
        raise AssertionError(f"trigger form lacks param titles {missing}; it shows {titles}")

    for key, value in overrides.items():
        field = _field(dialog, key)
        field.scroll_into_view_if_needed()
        _set_field(field, value)

    # screenshot of the whole form: grow the viewport so the dialog needs no scrolling
    size = page.viewport_size
    needed = dialog.evaluate("e => e.scrollHeight") + 200
    page.set_viewport_size({"width": size["width"], "height": min(max(needed, size["height"]), 6000)})
    try:
        page.wait_for_timeout(300)
        page.screenshot(path=screenshot_path)
    finally:
        page.set_viewport_size(size)

    submit = page.get_by_test_id("trigger-dag-submit")
    if not submit.is_enabled():
        raise AssertionError(f"Trigger button is disabled: {_form_problems(dialog)}")
    submit.click()
    runs_url = re.compile(rf"/dags/{re.escape(dag_id)}/runs/[^/?]+")
    try:
        page.wait_for_url(runs_url, timeout=20_000)
    except Exception:
        toasts = page.locator('[data-scope="toast"]').all_inner_texts()
        if dialog.is_visible() or toasts:
            raise AssertionError(f"triggering {dag_id} failed: {' | '.join(toasts) or 'dialog stayed open'}")
        return titles, None
    return titles, unquote(page.url.split("/runs/", 1)[1].split("/")[0].split("?")[0])


def _run_bar(page: Page, run_id: str | None) -> Locator:
    if run_id is None:
        return page.locator(_RUN_BAR).last  # newest run is the right-most bar
    rid = run_id.replace("\\", "\\\\").replace('"', '\\"')
    return page.locator(f'[data-run-id="{rid}"] a[href*="/runs/"]:not([href*="/tasks/"])').first


def _grid_state(page: Page, bar: Locator) -> tuple[str, str]:
    """Hover a grid run bar and read (run id, state) from its tooltip."""
    page.mouse.move(0, 0)  # leave any bar so the tooltip re-opens
    bar.hover()
    tip = page.get_by_test_id("basic-tooltip").filter(has_text="State:")
    tip.wait_for(timeout=5_000)
    text = tip.inner_text()
    run = re.search(r"Run ID:\s*(\S+)", text)
    state = re.search(r"State:\s*(.+)", text)
    page.mouse.move(0, 0)
    return (run.group(1) if run else "?"), (state.group(1).strip().lower() if state else "?")


def wait_for_run_success_in_grid(page: Page, base_url: str, dag_id: str, run_id: str | None,
                                 timeout_s: float, screenshot_path: str,
                                 poll_s: float = 5, reload_every_s: float = 30) -> str:
    """Wait until the run is green in the Dag's grid view; return its run id.

    ``run_id`` None means the newest run in the grid. The state is read from the grid bar's
    tooltip ("State: Success"), polling while the UI auto-refreshes and reloading the page
    every ``reload_every_s``. On success the bar is clicked so the screenshot shows the grid
    with the run selected and the run header's "Success" badge, which is checked too.
    Raises AssertionError when the run fails or ``timeout_s`` passes.
    """
    base_url = base_url.rstrip("/")
    grid_url = f"{base_url}/dags/{dag_id}"
    deadline = time.monotonic() + timeout_s
    page.goto(grid_url)
    page.get_by_test_id("grid-view-button").click()  # grid (not graph) in the left panel
    last_reload, state, seen_id = time.monotonic(), "not shown", run_id
    while True:
        bar = _run_bar(page, run_id)
        try:
            bar.wait_for(timeout=10_000)
            seen_id, state = _grid_state(page, bar)
            if run_id is not None and seen_id != run_id:  # tooltip of a neighbouring bar
                seen_id, state = run_id, "unreadable (tooltip of another run)"
        except Exception:
            state = "not shown in grid"
        if state == "success":
            break
        if state in ("failed", "upstream_failed", "upstream failed"):
            page.screenshot(path=screenshot_path)
            raise AssertionError(f"run {seen_id} of {dag_id} is {state!r} in the grid (screenshot {screenshot_path})")
        if time.monotonic() > deadline:
            page.screenshot(path=screenshot_path)
            raise AssertionError(f"run {seen_id or 'newest'} of {dag_id} not successful after {timeout_s:.0f}s; "
                                 f"grid shows state {state!r} (screenshot {screenshot_path})")
        page.wait_for_timeout(poll_s * 1000)
        if time.monotonic() - last_reload > reload_every_s:
            page.goto(grid_url)
            last_reload = time.monotonic()

    bar.click()  # opens the run page; the grid stays on the left with the run selected
    header = page.get_by_role("heading", name=seen_id, exact=True).locator("xpath=..")
    badge = header.get_by_test_id("state-badge")
    badge.wait_for()
    if badge.inner_text().strip().lower() != "success":
        raise AssertionError(f"grid says success but run header shows {badge.inner_text()!r}")
    page.mouse.move(0, 0)
    page.screenshot(path=screenshot_path)
    return seen_id


def open_run_tab(page: Page, base_url: str, dag_id: str, run_id: str, url_route: str, title: str,
                 screenshot_path: str) -> str:
    """Open a plugin's tab (an external view, ``url_route``) of a run's page and return the text
    of the page the UI frames in it (the ``<iframe>`` titled with the view's name)."""
    from urllib.parse import quote

    base_url = base_url.rstrip("/")
    page.goto(f"{base_url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/plugin/{url_route}")
    frame = page.frame_locator(f'iframe[title="{title}"]')
    body = frame.locator("body")
    body.wait_for()
    page.wait_for_timeout(500)  # the framed page's images
    page.screenshot(path=screenshot_path)
    return body.inner_text()
