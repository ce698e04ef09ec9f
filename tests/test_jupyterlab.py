"""The widgets in a real JupyterLab with a live kernel, driven by headless Chromium.

What a student meets: a temporary copy of ``notebooks/00_primer.ipynb`` up to its first
explorer (the cells after it show no widget, and nbval runs them), with two cells appended (a
``live()`` panel over its explorer's render function, and a probe), is opened in
JupyterLab, served on 127.0.0.1 at a free port with a token and ``LABKIT_FAST=1`` in the
server's (hence the kernel's) environment. All cells are run through the UI
(``notebook:run-all-cells`` via ``window.jupyterapp``), then:

- the explorer's first slider and the live panel's first slider are moved with the arrow keys
  (after ``widgets.SLIDER_NAMES_JS`` has named every handle after its label, as the book does);
- each displayed image's bytes must be the frame the kernel holds for the new position (the
  probe cell, run again through the UI, reports the kernel's side: slider positions, the
  SHA-256 of every explorer frame, of the live image and of a fresh render at the live values);
- every image shows at its own pixel size (or the output's width, if less) with its alt text
  as ``title``, the tracks of the sliders of one widget line up, and every handle has its
  parameter's name as accessible name (from Chromium's accessibility tree).

The server is then shut down through its API; the test asserts that no kernel and no process
started for it (server, kernel, browser) is left. Needs ``chromium`` and ``chromedriver``
(``make browser``); skipped with a message where they are missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from labkit.widgets import SLIDER_NAMES_JS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "00_primer.ipynb"
CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000"]
TIMEOUT = 300  # seconds for the page, or for running every cell, on a busy 2-core machine

# A live() panel over the notebook's first explorer's render function, on log-spaced sliders
# spanning that explorer's numeric grids (so the test does not depend on the notebook's names).
LIVE_CELL = """\
import labkit.widgets

box = next(value for value in Out.values() if isinstance(value, labkit.widgets.Explorer))
ranges = {name: labkit.widgets.live.log(min(grid), max(grid))
          if len(grid) > 1 and all(isinstance(v, (int, float)) and v > 0 for v in grid) else grid
          for name, grid in box.grids.items()}
panel = labkit.widgets.live(box.render, dpi=60, **ranges)
panel"""

PROBE_CELL = """\
import hashlib, json, os

sha = lambda data: hashlib.sha256(data).hexdigest()
values = {name: control.value for name, control in panel.controls.items()}
probe = {
    "pid": os.getpid(),
    "explorer": {"names": list(box.grids), "index": {name: s.index for name, s in box.sliders.items()},
                 "frames": {",".join(map(str, i)): sha(png) for i, png in box.frames.items()},
                 "alt": box.frame_at().tooltip},
    "live": {"names": list(panel.controls), "values": values, "options": [list(c.options) for c in panel.controls.values()],
             "shown": sha(panel.image.value), "alt": panel.image.tooltip,
             "fresh": sha(labkit.widgets.figure_png(panel.render(**values), dpi=60, colors=256))},
}
with open(os.environ["LABKIT_PROBE"], "w") as file:
    json.dump(probe, file)"""

# Runs the notebook top to bottom through the UI, in the background: window.labkitRun is set to
# run-all's verdict when done (the test polls it; one long script call would hit selenium's
# 120 s HTTP timeout on a busy machine).
RUN_ALL = """
window.labkitRun = null;
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
(async () => {
  while (!window.jupyterapp) await sleep(100);
  const app = window.jupyterapp;
  await app.started; await app.restored;
  // The notebook panel (headless, the window may have no focus, so shell.currentWidget can be null).
  let panel;
  while (!(panel = Array.from(app.shell.widgets('main')).find(w => w.sessionContext && w.content))) await sleep(100);
  app.shell.activateById(panel.id);
  await panel.context.ready; await panel.sessionContext.ready;
  while (!panel.sessionContext.session || !panel.sessionContext.session.kernel
         || panel.sessionContext.session.kernel.connectionStatus !== 'connected') await sleep(100);
  const ok = await app.commands.execute('notebook:run-all-cells');
  window.labkitRun = {ok: ok, cells: panel.content.widgets.length};
})().catch(error => { window.labkitRun = {error: String(error)}; });"""

# Runs the last cell (the probe) again through the UI, in the background likewise.
RUN_LAST = """
window.labkitRun = null;
const app = window.jupyterapp;
const panel = Array.from(app.shell.widgets('main')).find(w => w.sessionContext && w.content);
app.shell.activateById(panel.id);
panel.content.activeCellIndex = panel.content.widgets.length - 1;
app.commands.execute('notebook:run-cell').then(ok => { window.labkitRun = {ok: ok}; },
                                               error => { window.labkitRun = {error: String(error)}; });"""

# The one visible image of a widget: its src, title, natural and displayed sizes.
SHOWN = """
const shown = Array.from(arguments[0].querySelectorAll('img.widget-image'))
  .filter(img => { const r = img.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
return shown.map(img => ({src: img.src, title: img.getAttribute('title'), complete: img.complete,
                          natural: img.naturalWidth, width: img.getBoundingClientRect().width,
                          room: arguments[0].clientWidth}));"""

# The bytes behind an image's blob URL, as base64.
BYTES = """
const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.arrayBuffer()).then(buffer => {
  const bytes = new Uint8Array(buffer); let text = '';
  for (let k = 0; k < bytes.length; k += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(k, k + 0x8000));
  done(btoa(text));
}, error => done(null));"""

TRACKS = """
return Array.from(arguments[0].querySelectorAll('.widget-slider .noUi-target')).map(track => {
  const r = track.getBoundingClientRect(); return [r.left, r.width]; });"""


def run_cells(driver, script: str) -> dict:
    """Start ``script`` (``RUN_ALL`` or ``RUN_LAST``) and wait for its verdict."""
    driver.execute_script(script)
    return poll(lambda: driver.execute_script("return window.labkitRun"), interval=1) or {"error": "timed out"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read() or b"null")


def request(url: str, method: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url, method=method, data=b"" if method == "POST" else None),
                           timeout=10).close()


def poll(condition, timeout=TIMEOUT, interval=0.2):
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the live processes whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z" and int(proc.name) != os.getpid():
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def alive(pid: int | None) -> bool:
    try:
        return pid is not None and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def write_notebook(folder: Path) -> Path:
    """The notebook's cells up to its first explorer, outputs cleared, then the two cells above.

    The cells after the explorer (sampling, exercises) show no widget; nbval runs them.
    """
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = next((k for k, cell in enumerate(nb.cells)
                  if cell.cell_type == "code" and "widgets.explorer(" in cell.source), None)
    assert first is not None, f"{NOTEBOOK.name} shows no widgets.explorer(...): the test needs one"
    nb.cells = nb.cells[:first + 1]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nb.cells += [nbformat.v4.new_code_cell(LIVE_CELL), nbformat.v4.new_code_cell(PROBE_CELL)]
    path = folder / "root" / NOTEBOOK.name
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


def start_lab(folder: Path, token: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "LABKIT_FAST": "1", "LABKIT_FIGURES": str(folder / "figures"),
           "LABKIT_PROBE": str(folder / "probe.json"), "JUPYTER_CONFIG_DIR": str(folder / "config"),
           "JUPYTER_RUNTIME_DIR": str(folder / "runtime"), "JUPYTER_DATA_DIR": str(folder / "data"),
           "IPYTHONDIR": str(folder / "ipython"),
           "OMP_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={folder / 'root'}", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.workspaces_dir={folder / 'workspaces'}", f"--LabApp.user_settings_dir={folder / 'settings'}"]
    # No news prompt: a toast would sit over the notebook.
    settings = folder / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "false"}))
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(command, env=env, cwd=folder / "root", stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready():
        if server.poll() is not None:
            return True
        try:
            return get(f"{url}/api/status?token={token}") is not None
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    assert poll(ready, timeout=60) and server.poll() is None, \
        f"JupyterLab did not start:\n{(folder / 'server.log').read_text()[-3000:]}"
    return server, url


def stop_lab(server: subprocess.Popen, url: str, token: str) -> list:
    """Shut every kernel down, then the server, through its API; the kernels still listed before."""
    kernels = []
    try:
        for kernel in get(f"{url}/api/kernels?token={token}"):
            request(f"{url}/api/kernels/{kernel['id']}?token={token}", "DELETE")
        kernels = get(f"{url}/api/kernels?token={token}")
        request(f"{url}/api/shutdown?token={token}", "POST")
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.terminate()
        server.wait(timeout=10)
    return kernels


def start_browser(folder: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={folder / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver or browser
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(TIMEOUT)
    return driver


def accessible_names(driver, selector: str) -> list[str]:
    """The accessible name Chromium computes for each element matching ``selector``, each
    scrolled into view first (JupyterLab leaves off-screen cells out of the accessibility tree)."""
    from selenium.webdriver.common.by import By

    names = []
    for k, element in enumerate(driver.find_elements(By.CSS_SELECTOR, selector)):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        root = driver.execute_cdp_cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = driver.execute_cdp_cmd("DOM.querySelectorAll", {"nodeId": root, "selector": selector})["nodeIds"][k]
        tree = driver.execute_cdp_cmd("Accessibility.getPartialAXTree", {"nodeId": node, "fetchRelatives": False})
        names.append(tree["nodes"][0].get("name", {}).get("value", ""))
    return names


def shown(driver, box) -> dict:
    """The one visible image of a widget, once decoded, with its bytes' SHA-256. The widget may
    swap its image (and revoke the old blob URL) between finding it and reading it: then look
    again, a few times, before failing."""
    for _ in range(10):
        images = poll(lambda: (s := driver.execute_script(SHOWN, box)) and len(s) == 1 and s[0]["complete"]
                      and s[0]["natural"] > 0 and s, timeout=30) or driver.execute_script(SHOWN, box)
        assert len(images) == 1, f"expected one visible image, found {images}"
        image = images[0]
        data = driver.execute_async_script(BYTES, image["src"])
        if data:
            return {**image, "sha": hashlib.sha256(base64.b64decode(data)).hexdigest()}
        time.sleep(0.5)
    raise AssertionError(f"could not read the image behind {image['src']}")


def move(driver, box, before: dict) -> dict:
    """Press the right arrow key on the widget's first slider handle; the image it then shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    handle = box.find_elements(By.CSS_SELECTOR, ".noUi-handle")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    handle.send_keys(Keys.ARROW_RIGHT)
    after = poll(lambda: (image := shown(driver, box))["sha"] != before["sha"] and image, timeout=60)
    assert after, "the image did not change after the arrow key"
    return after


def check_layout(driver, box, image: dict, what: str) -> None:
    # Its own size, or the widget's width where that is less (max-width: 100%): never stretched.
    assert abs(image["width"] - min(image["natural"], image["room"])) <= 1, \
        f"{what}: image shown {image['width']:.0f} px wide, its own size is {image['natural']} px " \
        f"({image['room']} px available)"
    tracks = driver.execute_script(TRACKS, box)
    assert len({round(left) for left, _ in tracks}) == 1 and len({round(width) for _, width in tracks}) == 1, \
        f"{what}: slider tracks do not line up (left, width): {tracks}"


def test_widgets_in_jupyterlab(tmp_path):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("JupyterLab test skipped: no chromium/chromedriver on PATH (run `make browser` as root "
                    "on Debian/Ubuntu to install them)")
    pytest.importorskip("selenium", reason="JupyterLab test skipped: selenium is not installed (run `make browser`)")
    pytest.importorskip("jupyterlab", reason="JupyterLab test skipped: jupyterlab is not installed (`make venv`)")
    from selenium.webdriver.common.by import By

    folder = tmp_path / "lab"
    folder.mkdir()
    path = write_notebook(folder)
    token = uuid.uuid4().hex
    server, url = start_lab(folder, token)
    driver = kernels_left = kernel_pid = None
    try:
        driver = start_browser(folder)
        driver.get(f"{url}/lab/tree/{path.name}?reset&token={token}")
        result = run_cells(driver, RUN_ALL)
        assert result.get("ok") is True, f"running all cells through the UI failed: {result}"
        driver.execute_script(SLIDER_NAMES_JS)

        probe_file = folder / "probe.json"
        before = json.loads(probe_file.read_text())
        kernel_pid = before["pid"]
        explorer = driver.find_element(By.CSS_SELECTOR, ".labkit-explorer")
        panel = driver.find_elements(By.CSS_SELECTOR, ".labkit-live")[-1]

        # Every handle is named after its slider's parameter.
        names = before["explorer"]["names"] + before["live"]["names"]
        assert accessible_names(driver, ".labkit-explorer .noUi-handle, .labkit-live .noUi-handle") == names

        # The frames shown before any move are the kernel's, with their alt text.
        start = {"explorer": shown(driver, explorer), "live": shown(driver, panel)}
        index = before["explorer"]["index"]
        key = ",".join(str(index[name]) for name in before["explorer"]["names"])
        assert start["explorer"]["sha"] == before["explorer"]["frames"][key]
        assert start["explorer"]["title"] == before["explorer"]["alt"] and " = " in start["explorer"]["title"]
        assert start["live"]["sha"] == before["live"]["shown"] == before["live"]["fresh"]
        assert start["live"]["title"] == before["live"]["alt"]
        check_layout(driver, explorer, start["explorer"], "explorer")
        check_layout(driver, panel, start["live"], "live")

        moved = {"explorer": move(driver, explorer, start["explorer"]), "live": move(driver, panel, start["live"])}
        # The kernel must have seen both moves before the probe runs again.
        first = before["live"]["names"][0]
        stops = [value for _, value in before["live"]["options"][0]]
        target = stops[stops.index(before["live"]["values"][first]) + 1]
        result = run_cells(driver, RUN_LAST)
        assert result.get("ok") is True, f"running the probe cell again failed: {result}"
        after = json.loads(probe_file.read_text())

        name = before["explorer"]["names"][0]
        assert after["explorer"]["index"] == {**index, name: index[name] + 1}, "the kernel did not see the move"
        key = ",".join(str(after["explorer"]["index"][n]) for n in after["explorer"]["names"])
        assert moved["explorer"]["sha"] == after["explorer"]["frames"][key] != start["explorer"]["sha"]
        assert moved["explorer"]["title"] == after["explorer"]["alt"] != start["explorer"]["title"]
        assert after["live"]["values"][first] == target
        assert moved["live"]["sha"] == after["live"]["shown"] == after["live"]["fresh"] != start["live"]["sha"]
        assert moved["live"]["title"] == after["live"]["alt"]
        check_layout(driver, panel, moved["live"], "live")
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        widget_errors = [e for e in errors if "widget" in e.lower() or "could not create a view" in e.lower()]
        assert not widget_errors, f"widget errors in the console: {widget_errors}"
    finally:
        if driver is not None:
            driver.quit()
        kernels_left = stop_lab(server, url, token)
    assert kernels_left == [], f"kernels still running after shutdown: {kernels_left}"
    assert server.returncode is not None
    left = poll(lambda: not processes_mentioning(str(folder)), timeout=20) or processes_mentioning(str(folder))
    assert left is True, f"processes left behind: {left}"
    assert not alive(kernel_pid), f"the kernel (pid {kernel_pid}) is still running"
