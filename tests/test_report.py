"""`qnas report RUN`: one self-contained page, rendered in a real headless Chromium without console errors."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import qnas
from qnas.cli import main

TINY = Path(__file__).parent / "tiny_search.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# .ci/run installs Debian's chromium and sets this, so CI cannot skip the browser test.
REQUIRED = os.environ.get("QNAS_REQUIRE_BROWSER") == "1"


def render(page: Path, png: Path, profile: Path) -> str:
    """Screenshot `page` in headless Chromium; return what its console printed."""
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1200,3000",
        "--virtual-time-budget=8000",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return "\n".join(line for line in done.stderr.splitlines() if ":CONSOLE" in line)


@pytest.fixture(scope="module")
def report_run(tmp_path_factory) -> qnas.Run:
    return qnas.search(
        TINY, out=tmp_path_factory.mktemp("report") / "run", progress=False, search__iterations=2
    )


def test_the_report_names_its_axes_and_marks_the_choice(report_run, capsys):
    assert main(["report", str(report_run.path)]) == 0
    page = report_run.path / "report.html"
    assert capsys.readouterr().out.strip() == f"wrote {page}"
    text = page.read_text()
    assert "noisy loss on validation samples (lower is better)" in text
    assert "two-qubit gates after transpiling (lower is better)" in text
    assert "\\u003cbr\\u003eblocks: " in text  # in every point's hover (plotly escapes the <br>)
    assert "chosen circuit" in text and f"id <code>{report_run.best['id']}</code>" in text
    assert "fine-tuned finalists" in text and "hypervolume" in text
    assert text.count("<img alt=") == 2  # the circuit and the coupling map
    assert "<script src=" not in text  # self-contained: plotly is inlined, the page opens offline


@pytest.mark.skipif(CHROMIUM is None and not REQUIRED, reason="no chromium (.ci/run installs Debian's)")
def test_the_report_renders_in_a_real_browser_without_console_errors(report_run, tmp_path):
    assert CHROMIUM is not None, "QNAS_REQUIRE_BROWSER=1 but no chromium on PATH"
    page = Path(main(["report", str(report_run.path)]) == 0 and report_run.path / "report.html")
    console = render(page, tmp_path / "report.png", tmp_path / "profile")
    assert console == ""
    assert (tmp_path / "report.png").stat().st_size > 50_000  # a page with plots, not a blank one
    # The check can fail: a page with a script error is caught.
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>notDefined();</script></body></html>")
    assert "notDefined" in render(broken, tmp_path / "broken.png", tmp_path / "profile2")
