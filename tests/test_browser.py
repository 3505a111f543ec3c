"""JupyterLab in headless Chromium: open notebook 01, run it, use the playground widget, take a screenshot."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from helpers import ROOT, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.server, pytest.mark.skipif(not (CHROMIUM and DRIVER), reason=(
    "Debian chromium and chromium-driver are not installed (make test installs them with apt where it can)"))]


@pytest.fixture
def jupyterlab(tiny_server, tmp_path):
    """JupyterLab on a free 127.0.0.1 port with a token, serving a scratch copy of the notebooks."""
    root = tmp_path / "nb"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_serving.ipynb", root)  # edits and autosaves stay out of the repo
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyter.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
                             "--LabApp.news_url=None",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                             *(["--allow-root"] if os.geteuid() == 0 else [])],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
                            env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jcfg")})
    import httpx
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        pytest.fail("JupyterLab did not start: " + (tmp_path / "jupyter.log").read_text()[-2000:])
    yield f"http://127.0.0.1:{port}", token
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()
    assert token not in (tmp_path / "nb" / "01_serving.ipynb").read_text()


@pytest.fixture
def chrome_tmp():
    """Chromium's TMPDIR: its singleton socket folder (/tmp/org.chromium.Chromium.*) outlived every run. Not
    pytest's tmp_path: under xdist that is too deep for a Unix socket's 107 bytes, and Chromium exited at start."""
    folder = tempfile.mkdtemp(prefix="lab-chrome-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_playground_widget_answers_in_the_browser(jupyterlab, chrome_tmp):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from lab import widgets
    url, token = jupyterlab
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1800"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER, env={**os.environ, "TMPDIR": chrome_tmp}), options=opts)
    try:
        driver.get(f"{url}/lab/tree/01_serving.ipynb?token={token}")
        wait = WebDriverWait(driver, 120)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
        wait.until(lambda d: d.execute_script(
            "const w = window.jupyterapp.shell.currentWidget;"
            "return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
            " && w.sessionContext.session.kernel.connectionStatus === 'connected');"))
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        send = wait.until(ec.element_to_be_clickable((By.XPATH, "//button[contains(@class, 'jupyter-button')"
                                                                " and normalize-space()='Send']")))
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", send)
        send.click()
        done = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".lab-done")))
        assert "tok/s" in done.text
        panel = send.find_element(By.XPATH, "ancestor::div[contains(@class, 'widget-vbox')][1]")
        answer = panel.find_element(By.CSS_SELECTOR, ".jp-OutputArea-output, .widget-output").text
        assert answer.strip()  # the tiny server's streamed answer reached the page
        shot = widgets.screenshot_dir() / "01_playground.png"
        driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:4] == b"\x89PNG"
    finally:
        driver.quit()
