"""`dagster dev` serves the UI on 127.0.0.1 only, and a real headless browser renders the asset graph, the schedule
and the sensors. Needs Debian's chromium (`apt-get install -y chromium`); skipped without it."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Debian's chromium; Ubuntu's chromium-browser or Google Chrome (preinstalled on GitHub runners) take the same flags
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome",
                                                "google-chrome-stable"))), None)
LOCATION = "aiso_pipeline.definitions"  # the code location name workspace.yaml gives

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium for the headless-browser UI test: "
                                                          "sudo apt-get install -y chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`aiso ui` for an empty data directory (the Dagster UI); yields the base URL."""
    tmp = tmp_path_factory.mktemp("ui")
    data, home = tmp / "data", tmp / "data" / ".dagster"
    for stream in ("inference", "product"):
        (data / "landing" / stream).mkdir(parents=True)
    home.mkdir()
    shutil.copyfile(REPO / "aiso_pipeline" / "instance" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    # as the README shows it: `.venv/bin/aiso ui`, the venv not activated (its bin is not on PATH)
    env = {k: v for k, v in os.environ.items() if k not in ("AISO_ALERT_WEBHOOK", "VIRTUAL_ENV", "DAGSTER_HOME")}
    env.update(PATH="/usr/bin:/bin", PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    aiso = Path(sys.executable).with_name("aiso")
    log = open(tmp / "dagster-dev.log", "w")
    server = subprocess.Popen([str(aiso), "--data-dir", str(data), "ui", "--port", str(port), "--workspace",
                               str(REPO / "workspace.yaml")],
                              cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                info = json.loads(get(f"{base}/server_info"))
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dagster dev did not come up: {(tmp / 'dagster-dev.log').read_text()[-3000:]}")
                time.sleep(1)
        assert info["dagster_version"]
        yield base, port, tmp
    finally:
        # dagster dev and its children (webserver, daemon, code servers) share the session we started it in
        for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:
                break
            try:
                server.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(server.pid, signal.SIGKILL)  # stragglers of our own process group
        except ProcessLookupError:
            pass
        log.close()


def render(url: str, profile: Path) -> str:
    """The page's text after its JavaScript ran, as headless Chromium renders it."""
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120).stdout
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_asset_graph_renders_in_a_browser(ui):
    base, _, tmp = ui
    lineage = render(f"{base}/asset-groups", tmp / "profile-1")
    for group in ("ingest", "outcomes", "monitoring"):
        assert group in lineage, lineage[:2000]
    ingest = render(f"{base}/locations/{LOCATION}/asset-groups/ingest", tmp / "profile-2")
    assert "inference_events" in ingest and "product_events" in ingest, ingest[:2000]


def test_schedule_and_sensors_are_listed(ui):
    base, _, tmp = ui
    page = render(f"{base}/overview/automation", tmp / "profile-3")
    for name in ("nightly_schedule", "landing_sensor", "anomaly_alerts", "run_failure_alerts", "publish_warehouse"):
        assert name in page, page[:2000]
    assert "02:00 AM UTC" in page


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, from /proc/net/tcp{,6} (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads listening sockets from /proc/net/tcp")
def test_the_ui_listens_on_loopback_only(ui):
    _, port, _ = ui
    assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing on 0.0.0.0 or ::
