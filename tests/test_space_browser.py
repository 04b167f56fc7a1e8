"""The Space's page end to end in a real headless browser: the system Chromium, driven by Selenium.

Cancels a long load, loads ShapesWorld, runs a stage and a selection and sees the counts change,
builds the curated dataset and downloads it, uploads a bad file and sees the one-line message,
publishes to a loopback Hub server with a token typed into the page (emptied after, never in
the page), and saves a screenshot of the whole page (its path is printed; nothing is committed). Skipped when gradio,
selenium, chromium or chromedriver is missing, unless ``VITCURATE_REQUIRE_BROWSER=1`` (CI sets
it where it installs them), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import zipfile

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECRET = "hf_BROWSER_session_token_0123456789"


def _missing() -> str | None:
    for module in ("gradio", "selenium"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install 'hf_vitcurate[dev]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _browser_at_hand():
    reason = _missing()
    if reason and os.environ.get("VITCURATE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"VITCURATE_REQUIRE_BROWSER=1 but {reason}")
    if reason:
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from hf_vitcurate.space import Limits, launch

    limits = Limits(work_dir=str(tmp_path_factory.mktemp("space")), max_upload_mb=5)
    demo, url = launch(limits, host="127.0.0.1", port=_free_port(), block=False)
    yield url
    demo.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(predicate, what: str, limit: float = 120):
    start = time.time()
    while time.time() - start < limit:
        try:
            value = predicate()
        except Exception:  # the page is still drawing: the element is not there yet
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"waited {limit:.0f} s for {what}")


def _counts(driver) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(driver.find_element(By.ID, "counts").text.split())


def _click(driver, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def _set(driver, css: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, css)
    box.clear()
    box.send_keys(value)


def _screenshot(driver, path) -> str:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, height + 100)
    driver.execute_script("window.scrollTo(0, 0)")  # the whole page, from its title down
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    return str(path)


def test_a_user_loads_tags_selects_downloads_publishes_and_sees_a_bad_file_refused(app_url, browser, tmp_path, monkeypatch,
                                                                                   request):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    _wait(lambda: "No dataset loaded yet" in _counts(browser), "the page")

    # A long load, cancelled: the page stays as it was, and the next job runs. The load is made
    # long on purpose (a 1500-image pool can take under a second), so the cancel always lands mid-job.
    import hf_vitcurate.synthetic as synthetic

    real = synthetic.pool_and_truth
    # The cancelled job's thread runs on: it is let go when the test ends, so that it finishes
    # while the interpreter is still up (woken at shutdown, datasets' threads refuse to start).
    over = threading.Event()
    request.addfinalizer(over.set)

    def slow(n_images, **kw):
        if n_images == 1500:
            over.wait(30)
            return real(4, **kw)
        return real(n_images, **kw)

    monkeypatch.setattr(synthetic, "pool_and_truth", slow)
    _set(browser, "#n-images input", "1500")
    _click(browser, "#load-shapes")
    time.sleep(1.5)
    _click(browser, "#cancel")
    time.sleep(3)
    assert "No dataset loaded yet" in _counts(browser)

    t0 = time.time()
    _set(browser, "#n-images input", "12")
    _click(browser, "#load-shapes")
    loaded = _wait(lambda: "kept" in _counts(browser) and _counts(browser), "ShapesWorld to load")
    assert "rejected" in loaded and "selected" not in loaded and "12 images" in loaded
    print(f"load after cancel: {time.time() - t0:.1f} s")
    assert time.time() - t0 < 20  # not queued behind the cancelled job (it waits until the test ends)

    _click(browser, "#run-stage")  # concepts, the default stage
    _wait(lambda: "informativeness" in _counts(browser), "the concepts stage")

    _click(browser, "#run-select")  # random_subset, a quarter of the rows
    selected = _wait(lambda: "selected" in _counts(browser) and _counts(browser), "the selection")
    n_tagged = int(selected.split(" of ")[-1].split()[0])
    n_selected = int(selected.split("selected ")[-1].split()[0])
    assert 0 < n_selected < n_tagged
    table = browser.find_element(By.ID, "before-after").text
    assert "rows after" in table and "caption" in table

    _click(browser, "#build-zip")
    link = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#download a"), "the zip to build")
    link.click()
    zips = _wait(lambda: [p for p in browser.downloads.iterdir() if p.suffix == ".zip"], "the download", limit=60)
    with zipfile.ZipFile(zips[0]) as z:
        names = z.namelist()
    assert "README.md" in names and any(n.startswith("data/") and n.endswith(".parquet") for n in names)

    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "a", "conversations": [oops')
    tab = [b for b in browser.find_elements(By.XPATH, "//button[contains(., 'Upload LLaVA')]") if b.is_displayed()]
    tab[0].click()
    browser.find_element(By.CSS_SELECTOR, "#upload-records input[type=file]").send_keys(str(bad))
    _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#upload-records td.filename[aria-label='bad.json']"), "the upload")
    _click(browser, "#load-upload")
    shown = _wait(lambda: browser.find_element(By.ID, "message").text, "the error message")
    assert "bad.json: no readable record" in shown and "line 1: not valid JSON" in shown
    _wait(lambda: "bad.json: no readable record" in " ".join(t.text for t in browser.find_elements(By.CSS_SELECTOR, ".toast-body")),
          "the toast")
    assert "Traceback" not in browser.page_source
    assert _counts(browser) == selected  # the session and its views stay as they were

    # Publish with a token typed into the page: it goes to the Hub (a loopback server) and is never shown back.
    from hub_server import HubServer, point_clients_at

    with HubServer(token=SECRET) as hub:
        point_clients_at(hub.url, monkeypatch, str(tmp_path / "hf-cache"))  # the app runs in this process
        monkeypatch.delenv("HF_TOKEN", raising=False)
        _set(browser, "#token input", SECRET)
        _click(browser, "#publish")
        done = _wait(lambda: "Published to" in browser.find_element(By.ID, "published").text, "the push")
        assert done and any(p.endswith(".parquet") for p in hub.files("me/curated", repo_type="dataset"))
    assert browser.find_element(By.CSS_SELECTOR, "#token input").get_attribute("value") == ""
    assert SECRET not in browser.page_source
    stored = browser.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert SECRET not in stored  # and Gradio's run history, which would keep every input, is off:
    assert browser.execute_script("return window.gradio_config.run_history") is False

    shot = _screenshot(browser, os.environ.get("VITCURATE_ARTIFACTS", str(tmp_path)) + "/space.png")
    print(f"screenshot: {shot}")
