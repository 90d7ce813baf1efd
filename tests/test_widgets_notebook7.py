"""The governance panel in Notebook 7 (``python -m notebook``), driven in headless Chromium.

Notebook 7 is the other front end users open notebooks in. The reviewer rita opens the example
notebook ``example_notebooks/review_panel.ipynb`` there, runs all cells, and the panel must render
(6 tabs, nothing overflowing sideways at 1280x800), draw the lineage, and grant her approval, which
the ledger records. The JupyterLab counterpart is tests/test_widgets_browser.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nbgov.ledger.facade import Ledger
from support.browser import (
    NOTEBOOK7_KNOWN_ERRORS,
    artifacts_dir,
    chromium_page,
    error_outputs,
    fits_sideways,
    jupyter_notebook7,
    open_notebook7,
    require_browser,
    run_all_cells,
    screenshot,
)
from support.helpers import governed_ledger

EXAMPLE = Path(__file__).parents[1] / "example_notebooks" / "review_panel.ipynb"


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_reviewer_approves_in_notebook7(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    home, policy = governed_ledger(tmp_path)
    artifacts = artifacts_dir()
    env = {"NBGOV_HOME": str(home), "NBGOV_POLICY": str(policy), "NBGOV_KEY_DIR": str(tmp_path / "keys"),
           "NBGOV_ACTOR": "rita"}
    root = tmp_path / "rita"
    root.mkdir()
    shutil.copy(EXAMPLE, root / "review_panel.ipynb")

    with jupyter_notebook7(root, tmp_path / "nb7", env=env) as server:
        with chromium_page(artifacts, tmp_path / "browser") as browser:
            page = browser.page
            assert page.viewport_size == {"width": 1280, "height": 800}
            open_notebook7(page, server, "review_panel.ipynb")
            run_all_cells(page)
            panel = page.locator(".nbgov-panel")
            try:
                expect(panel).to_be_visible()
            except AssertionError as error:
                raise AssertionError(f"{error}\nnotebook errors: {error_outputs(page)}") from None
            expect(panel.locator(".lm-TabBar-tab")).to_have_count(6)
            expect(panel).to_contain_text("cell(s) captured")  # the Session tab, first
            assert fits_sideways(page, ".nbgov-panel")
            screenshot(page, artifacts, "nb7-panel-session")

            panel.locator(".lm-TabBar-tab", has_text="Lineage").first.click()
            expect(panel.locator("svg[role='img']").first).to_be_visible()
            assert fits_sideways(page, ".nbgov-panel")
            screenshot(page, artifacts, "nb7-panel-lineage")

            panel.locator(".lm-TabBar-tab", has_text="Approvals").first.click()
            expect(panel.locator("[data-state]")).to_contain_text("You are rita")
            panel.locator("textarea").first.fill("reviewed in the Notebook 7 panel by rita")
            panel.get_by_role("button", name="Approve", exact=True).click()
            outcome = panel.locator("[data-outcome]")
            expect(outcome).to_have_attribute("data-outcome", "ok")
            expect(outcome).to_contain_text("approval 1 of 1 by rita")
            expect(panel.locator("[data-state]")).to_have_attribute("data-state", "approved")
            assert fits_sideways(page, ".nbgov-panel")
            screenshot(page, artifacts, "nb7-panel-approvals")
            assert error_outputs(page) == []
        assert browser.unexpected_errors(NOTEBOOK7_KNOWN_ERRORS) == []

    decisions = Ledger(home).query("SELECT decision, reviewer FROM approvals ORDER BY seq")
    assert list(decisions.itertuples(index=False, name=None)) == [("granted", "rita")]
