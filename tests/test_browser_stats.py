"""The supervisors' statistics page on simulated traffic, in Chromium: filters, charts as
images, the live panel, a CSV link; staff are turned away. Screenshot saved as an artifact."""

import pytest

from tests.browser import screenshot, staff_login
from youthhub.staff.management.commands.seed_demo import DEMO_PASSWORD

pytestmark = [pytest.mark.services, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_statistics_page_on_simulated_traffic(daphne_server, simulated, browser):
    from playwright.sync_api import expect

    start, end, summary = simulated
    url = daphne_server["url"]
    mona = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    staff_login(mona, url, "mona", DEMO_PASSWORD)  # the demo supervisor (seed_demo ran)
    mona.goto(f"{url}/supervisor/stats/?start={start}&end={end}")
    expect(mona.locator("h1")).to_contain_text("youthhub")
    # Requests count when they close: those still open at the end are not in yet.
    contacts = mona.locator(".summary dd").first
    expect(contacts).to_have_text(str(summary.contacts - summary.still_open))
    # Every chart is an SVG image that loaded.
    charts = mona.locator("img.chart")
    assert charts.count() >= 6
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        expect(chart).to_have_js_property("complete", True)
        assert chart.evaluate("img => img.naturalWidth") > 0
    expect(mona.locator("#now-staff")).not_to_have_text("…")
    assert "<5" in mona.locator(".figures").inner_text()  # small cells are hidden
    csv = mona.locator("a[download]")
    assert f"start={start}" in csv.get_attribute("href")
    screenshot(mona, "stats-simulated-3-days.png")

    # A staff member who is not a supervisor is turned away.
    ingrid = browser.new_context().new_page()
    staff_login(ingrid, url, "ingrid", DEMO_PASSWORD)
    response = ingrid.goto(f"{url}/supervisor/stats/")
    assert response.status == 403
