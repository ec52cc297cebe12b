"""End to end in a real headless Chromium driven by Selenium: drag an edit slider, see the preview, then the
full render with its time; a bad upload shows the server's error on the page, a good one gets projected."""

import re
import shutil

import pytest
from app_http import assert_other_pixels, assert_same_pixels, call, decode_png, expected_pixels

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: The network is closed: no background traffic, no sandbox (root in a container), no GPU.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,1100")
TIMEOUT = 30


@pytest.fixture
def browser(tmp_path):
    pytest.importorskip("selenium", reason="selenium is not installed: pip install selenium (the dev extra)")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium / chromedriver not found: apt-get install chromium chromium-driver (make test-deps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS + (f"--user-data-dir={tmp_path / 'profile'}",):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def attr(element, name: str) -> str:
    return element.get_attribute(name) or ""


def test_drag_shows_the_preview_then_the_full_render(serve, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = serve(idle_s=1.0)  # a long idle time keeps the last preview on screen long enough to be seen
    browser.get(server.url)
    wait = WebDriverWait(browser, TIMEOUT, poll_frequency=0.02)
    view = browser.find_element(By.ID, "view")
    wait.until(lambda _: attr(view, "data-kind") == "full")
    first, first_src = int(attr(view, "data-request")), attr(view, "src")
    assert first_src.startswith("data:image/png;base64,")
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#edits label")]
    assert labels == ["smile", "age"] and browser.find_element(By.ID, "preview-gmacs").text != "–"

    slider = browser.find_element(By.ID, "edit-smile")
    drag = ActionChains(browser).click_and_hold(slider)
    for _ in range(6):
        drag.move_by_offset(10, 0).pause(0.05)
    drag.release().perform()

    wait.until(lambda _: attr(view, "data-kind") == "preview" and int(attr(view, "data-request")) > first)
    preview_src = attr(view, "src")
    assert preview_src != first_src and decode_png(preview_src).shape == (16, 16, 3)
    assert re.fullmatch(r"\d+\.\d ms", browser.find_element(By.ID, "preview-ms").text)
    assert browser.find_element(By.ID, "kind-badge").text.lower() == "preview"

    wait.until(lambda _: attr(view, "data-kind") == "full" and int(attr(view, "data-request")) > first)
    assert re.fullmatch(r"\d+\.\d ms", browser.find_element(By.ID, "full-ms").text)
    assert float(attr(view, "data-ms")) > 0
    strength = float(browser.find_element(By.ID, "edit-smile-value").text)
    assert strength > 0  # dragged to the right
    shown = decode_png(attr(view, "src"))
    assert_same_pixels(shown, expected_pixels(server.model, 0, {"smile": strength}))
    assert_other_pixels(shown, expected_pixels(server.model, 0, {"smile": strength - 0.1}))
    assert not browser.find_element(By.ID, "error").is_displayed()


def test_uploads_show_the_servers_error_or_get_projected(serve, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = serve(project_steps=5, idle_s=0.05)
    browser.get(server.url)
    wait = WebDriverWait(browser, TIMEOUT, poll_frequency=0.05)
    view = browser.find_element(By.ID, "view")
    wait.until(lambda _: attr(view, "data-kind") == "full")
    fake = tmp_path / "photo.png"
    fake.write_text("this is not a picture")
    browser.find_element(By.ID, "upload").send_keys(str(fake))
    error = browser.find_element(By.ID, "error")
    wait.until(lambda _: error.is_displayed())
    assert "not a readable PNG image" in error.text
    assert browser.find_element(By.ID, "upload-status").text == "upload failed"

    before = int(attr(view, "data-request"))
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (90, 60), "teal").save(photo)
    browser.find_element(By.ID, "upload").send_keys(str(photo))
    status = browser.find_element(By.ID, "upload-status")
    wait.until(lambda _: status.text.startswith("projected"))
    wait.until(lambda _: attr(view, "data-kind") == "full" and int(attr(view, "data-request")) > before)
    assert not error.is_displayed() and "active" in attr(browser.find_element(By.ID, "upload-thumb"), "class")


def test_a_session_the_server_closed_is_replaced_unnoticed(serve, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = serve(max_clients=1, idle_s=0.05)
    browser.get(server.url)
    wait = WebDriverWait(browser, TIMEOUT, poll_frequency=0.05)
    view = browser.find_element(By.ID, "view")
    wait.until(lambda _: attr(view, "data-kind") == "full")
    first_src, page_session = attr(view, "src"), browser.execute_script("return state.session")
    status, reply = call(server, "POST", "/api/sessions", {})  # takes the idle page's place
    assert status == 201
    wait.until(lambda _: browser.execute_script("return state.session") is None)  # its poll got 410: dropped
    assert not browser.find_element(By.ID, "error").is_displayed()

    browser.find_element(By.ID, "next-seed").click()  # the next action opens a new session and renders there
    wait.until(lambda _: attr(view, "data-kind") == "full" and attr(view, "src") != first_src)
    assert browser.execute_script("return state.session") not in (None, page_session, reply["session"])
    assert call(server, "GET", f"/api/sessions/{reply['session']}/render?timeout=0")[0] == 410
    assert not browser.find_element(By.ID, "error").is_displayed()
