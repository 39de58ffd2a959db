"""In a real browser: each demo account signs in on the login page and lands on its work;
the API docs render offline under the Content-Security-Policy."""

from urllib.parse import urlparse

import pytest

from demo.services import demo_accounts_ensure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LANDING = {
    "admin": ("#administer", "New project"),
    "reviewer": ("#review", "Demo street scenes"),
    "annotator": ("#annotate", "Demo street scenes"),
}


def watch_page(page, live_server_url):
    """Collect requests that leave the test server and console errors (CSP violations)."""
    seen = {"foreign": [], "errors": []}
    host = urlparse(live_server_url).netloc
    page.on(
        "request",
        lambda request: (
            seen["foreign"].append(request.url)
            if urlparse(request.url).scheme in ("http", "https") and urlparse(request.url).netloc != host
            else None
        ),
    )
    page.on("console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None)
    return seen


def test_each_demo_account_signs_in_and_lands_on_its_work(browser, live_server, tmp_path):
    accounts = demo_accounts_ensure(secrets_file=tmp_path / "demo.json")
    for account in accounts:
        context = browser.new_context()
        page = context.new_page()
        seen = watch_page(page, live_server.url)
        # given the login page
        page.goto(f"{live_server.url}/")
        assert page.url.startswith(f"{live_server.url}/login/")
        # when the person signs in with the printed password
        page.fill("#id_username", account.username)
        page.fill("#id_password", account.password)
        page.click("button[type=submit]")
        # then they land on the home page with their work on it
        section, text = LANDING[account.role]
        page.wait_for_selector(section)
        assert page.url == f"{live_server.url}/"
        assert text in page.inner_text(section)
        assert page.inner_text(".who") == account.username
        # and nothing left the machine, nothing broke the page's policy
        assert seen["foreign"] == []
        assert seen["errors"] == []
        # signing out returns to the login page
        page.click("text=Sign out")
        page.wait_for_selector("#id_username")
        context.close()


def test_wrong_password_is_refused_with_a_message(browser, live_server, tmp_path):
    demo_accounts_ensure(secrets_file=tmp_path / "demo.json")
    page = browser.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert "didn't match" in page.inner_text("[role=alert]")


def test_api_docs_render_offline_under_the_csp(browser, live_server, tmp_path):
    demo_accounts_ensure(secrets_file=tmp_path / "demo.json")
    page = browser.new_page()
    seen = watch_page(page, live_server.url)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "Quorum API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("text=/api/v1/projects/", timeout=20_000)
    assert seen["foreign"] == []
    # no Content-Security-Policy violation, no missing file (favicon included)
    assert seen["errors"] == []


def test_admin_pages_work_under_the_csp(browser, live_server, tmp_path):
    accounts = {a.username: a for a in demo_accounts_ensure(secrets_file=tmp_path / "demo.json")}
    page = browser.new_page()
    seen = watch_page(page, live_server.url)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", accounts["admin"].password)
    page.click("button[type=submit]")
    page.wait_for_selector("#administer")
    # the project form with its panel inline (select2 autocomplete, jQuery) runs its scripts
    page.click("text=Demo street scenes")
    page.click("text=Edit the panel in admin")
    page.wait_for_selector("#memberships-group")
    page.click("#memberships-group .add-row a")
    assert page.locator("#memberships-group tr.dynamic-memberships").count() >= 2
    assert seen["foreign"] == []
    assert seen["errors"] == []
