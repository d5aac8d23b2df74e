"""The wheel ships everything a user needs away from the checkout: every module, space and data file."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Build products and caches of the checkout stay out of the copy the wheel is built from.
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Return the wheel built with pip from a copy of the checkout (so the build leaves no trace in it)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "out"), str(source)],
        check=True,
        timeout=240,
    )
    (built,) = (tmp / "out").glob("qnas-*.whl")
    return built


def test_wheel_holds_every_module_space_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    spaces = {f"qnas/search_spaces/{p.name}" for p in (ROOT / "search_spaces").glob("*.yaml")}
    data = {
        f"qnas/{p.relative_to(ROOT / 'qnas').as_posix()}" for p in (ROOT / "qnas" / "data").glob("*.json")
    }
    # pyproject.toml lists the packages by name: a new subpackage left out of it shows here.
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "qnas").rglob("*.py")}
    assert "qnas/search_spaces/u3cu3.yaml" in spaces and "qnas/data/h2.json" in data
    assert sorted(spaces - names) == []
    assert sorted(data - names) == []
    assert sorted(modules - names) == []


def test_installed_wheel_finds_its_spaces_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {k: v for k, v in os.environ.items() if k != "QNAS_SPACES"}
    env["PYTHONPATH"] = str(site)  # ahead of the checkout's editable install
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import qnas, qnas.space as s; print(qnas.__file__); print(s.available_spaces())",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert Path(out[0]).is_relative_to(site)
    assert "'u3cu3'" in out[1] and "'ibm_basis'" in out[1]


def test_ci_runs_exactly_the_readme_test_command():
    """The README's test command (the second Quickstart block) is the line .ci/run runs, to the letter."""
    readme = (ROOT / "README.md").read_text()
    quickstart = readme[readme.index("## Quickstart") : readme.index("## The CLI")]
    blocks = [b.split("```", 1)[0].strip() for b in quickstart.split("```bash\n")[1:]]
    assert len(blocks) == 2 and "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert blocks[1] in ci
