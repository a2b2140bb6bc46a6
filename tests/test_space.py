"""The Hugging Face Space folder (scripts/make_space.py): its contents and front matter, Git LFS for big
files, app.py serving from the folder alone, and OCR from the Space's requirements in a fresh venv.

Pushing to the Hub itself is not tested (the Hub cannot be reached here)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from tests.support.processes import stop

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "TRANSFORMERS_OFFLINE": "1"}
MB = 1024 * 1024
EXPECTED_ENTRIES = {"app.py", "mmre_demo", "weights", "assets", "requirements.txt", "packages.txt", "README.md",
                    ".gitattributes"}
sys.path.insert(0, str(ROOT / "scripts"))
import make_space  # noqa: E402


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("space") / "space"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_space.py"), str(out)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def front_matter(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n")[1])


def lfs_tracked(folder: Path, paths: list[str], tmp_path: Path) -> dict[str, bool]:
    """Whether git (reading folder/.gitattributes) would hand each path to the LFS filter."""
    gitdir = tmp_path / "attr.git"
    subprocess.run(["git", "init", "-q", "--bare", str(gitdir)], check=True)
    out = subprocess.run(["git", f"--git-dir={gitdir}", f"--work-tree={folder}", "check-attr", "-z", "filter",
                          "--stdin"], input="\0".join(paths) + "\0", capture_output=True, text=True, check=True)
    fields = out.stdout.split("\0")
    return {fields[i]: fields[i + 2] == "lfs" for i in range(0, len(fields) - 2, 3)}


def is_binary(path: Path) -> bool:
    return b"\0" in path.read_bytes()[:8000]  # git's own test


def test_folder_holds_exactly_what_the_space_needs(space):
    assert {p.name for p in space.iterdir()} == EXPECTED_ENTRIES
    assert not list(space.rglob("__pycache__"))
    for sub in ("ner", "relation"):
        assert {"config.json", "model.safetensors"} <= {p.name for p in (space / "weights" / sub).iterdir()}
    examples = json.loads((space / "assets" / "examples.json").read_text(encoding="utf-8"))
    assert all((space / "assets" / ex["image"]).is_file() for ex in examples if ex.get("image"))
    # every module of the package came along
    assert ({p.relative_to(ROOT) for p in (ROOT / "mmre_demo").rglob("*.py")}
            == {p.relative_to(space) for p in (space / "mmre_demo").rglob("*.py")})


def test_front_matter_matches_the_installed_gradio(space):
    meta = front_matter(space / "README.md")
    assert meta["title"] and meta["sdk"] == "gradio"
    assert meta["sdk_version"] == version("gradio")
    assert meta["app_file"] == "app.py" and (space / meta["app_file"]).is_file()
    assert str(meta["python_version"]) == f"{sys.version_info.major}.{sys.version_info.minor}"
    major, minor = map(int, str(meta["python_version"]).split("."))
    assert (major, minor) <= make_space.MAX_PYTHON  # rapidocr-onnxruntime 1.4.4 needs Python < 3.13


def test_requirements_install_ocr_with_its_gui_opencv(space):
    lines = [ln.strip() for ln in (space / "requirements.txt").read_text().splitlines()]
    names = [make_space.requirement_name(ln) for ln in lines if ln and not ln.startswith("#")]
    assert make_space.OCR_REQUIREMENT in lines and make_space.TORCH_REQUIREMENT in lines
    assert "opencv-python-headless" not in names  # the GUI build comes with the OCR package: one cv2 only
    assert not any("--no-deps" in ln for ln in lines)
    pyproject = ROOT / "pyproject.toml"
    import tomllib

    deps = {make_space.requirement_name(d) for d in tomllib.loads(pyproject.read_text())["project"]["dependencies"]}
    assert deps - make_space.REPLACED <= set(names)
    # the README installs the same torch as the Space
    assert f"pip install {make_space.TORCH_REQUIREMENT}" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert (space / "packages.txt").read_text().split() == list(make_space.APT_PACKAGES)


def test_big_files_are_covered_by_git_lfs(space, tmp_path):
    # the Space folder: text over 10 MB or binary over 1 MB must go through LFS (the Hub's rule)
    files = [p for p in space.rglob("*") if p.is_file()]
    big = [p for p in files if p.stat().st_size > 10 * MB or (p.stat().st_size > MB and is_binary(p))]
    assert any(p.name == "model.safetensors" for p in big)  # the check has something to check
    tracked = lfs_tracked(space, [str(p.relative_to(space)) for p in big], tmp_path)
    assert all(tracked.values()), {k: v for k, v in tracked.items() if not v}
    # the repository: every tracked file over 10 MB
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True, check=True)
    over = [f for f in listed.stdout.split("\0") if f and (ROOT / f).is_file() and (ROOT / f).stat().st_size > 10 * MB]
    assert over, "no tracked file over 10 MB: the weights moved?"
    attrs = subprocess.run(["git", "-C", str(ROOT), "check-attr", "filter", "--", *over], capture_output=True,
                           text=True, check=True).stdout
    assert all(line.endswith(": filter: lfs") for line in attrs.splitlines()), attrs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_predict(python: str, folder: Path, tmp_path: Path) -> None:
    """Run app.py with `python`, cwd and PYTHONPATH set to `folder` only, offline; check (inside the serving
    process) that mmre_demo, its weights and assets come from `folder`, that the page is served, and that
    one prediction (an example image + caption from the folder) finds relations with OCR loaded."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_SERVER_", "MMRE_", "PYTHON"))}
    env.update(OFFLINE, PYTHONPATH=str(folder), GRADIO_SERVER_PORT=str(port),
               MMRE_ANNOTATIONS_DB=str(tmp_path / "ann.sqlite3"))
    code = ("import json, runpy, sys; import mmre_demo; from mmre_demo.data.paths import weights_dir; "
            "from mmre_demo.ui.controller import ASSETS; "
            "print('SOURCES ' + json.dumps([mmre_demo.__file__, str(weights_dir()), str(ASSETS)]), flush=True); "
            "sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__')")
    log = tmp_path / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen([python, "-c", code], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600  # generous: a shared CPU can be slow
        page = ""
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        page = r.read().decode("utf-8", "replace")
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "app.py did not serve its page in 600 s"
            time.sleep(0.5)
        assert "gradio" in page.lower()
        line = next(ln for ln in log.read_text().splitlines() if ln.startswith("SOURCES "))
        sources = [Path(p).resolve() for p in json.loads(line.removeprefix("SOURCES "))]
        assert all(p.is_relative_to(folder.resolve()) for p in sources), sources

        from gradio_client import Client, handle_file

        example = json.loads((folder / "assets" / "examples.json").read_text(encoding="utf-8"))[0]
        res = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            handle_file(str(folder / "assets" / example["image"])), example["caption"], 0.5, False,
            api_name="/predict")
        assert res[0].startswith("✅"), res[0]
        assert res[3]["data"], res[0]  # relations, from the folder's weights
        assert "OCR unavailable" not in res[12], res[12]
    finally:
        stop(proc)


@pytest.mark.slow
def test_app_py_serves_from_the_folder_alone(space, tmp_path):
    """With this checkout's .venv interpreter (its packages; needs no network): the folder's app runs on
    the folder's package, weights and assets. The fresh-venv test below does it with the Space's packages."""
    folder = tmp_path / "space"
    shutil.copytree(space, folder)
    serve_and_predict(sys.executable, folder, tmp_path)


def draw_text(path: Path, text: str) -> None:
    """Black letters on white, as tests/test_ocr.py draws them for the OCR engine."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"), 64)
    img = Image.new("RGB", (640, 200), "white")
    ImageDraw.Draw(img).text((40, 60), text, fill="black", font=font)
    img.save(path)


def _unreachable(url: str) -> str | None:
    """Why `url` cannot be fetched (with pip's CA bundle), or None."""
    cert = os.environ.get("PIP_CERT")
    context = ssl.create_default_context(cafile=cert) if cert and Path(cert).is_file() else None
    try:
        urllib.request.urlopen(url, timeout=15, context=context).close()
    except OSError as exc:
        return str(exc)
    return None


def _missing_debian_packages(names: list[str]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return names
    return [n for n in names if subprocess.run(["dpkg-query", "-W", "-f=${Status}", n], capture_output=True,
                                               text=True).stdout != "install ok installed"]


def _local_cpu_torch() -> Path | None:
    """A CPU torch wheel of the pinned version for this Python in /opt/wheels (a host-local wheel store)."""
    pinned = make_space.TORCH_REQUIREMENT.split("==")[1]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    found = sorted(Path("/opt/wheels").glob(f"torch-{pinned}+cpu-{tag}-*.whl"))
    return found[0] if found else None


def space_requirements_here(space: Path, tmp_path: Path) -> Path:
    """The Space's requirements.txt, as it is when the PyTorch CPU index answers; otherwise (as here) its
    --extra-index-url line is replaced by a folder holding the same CPU wheel from /opt/wheels."""
    text = (space / "requirements.txt").read_text()
    if _unreachable(make_space.TORCH_CPU_INDEX + "/torch/") is None:
        return space / "requirements.txt"
    wheel = _local_cpu_torch()
    if wheel is None:
        pytest.skip(f"{make_space.TORCH_CPU_INDEX} unreachable and no CPU torch wheel in /opt/wheels")
    links = tmp_path / "torch-wheel"
    links.mkdir()
    (links / wheel.name).symlink_to(wheel)
    lines = [f"--find-links {links}" if ln.startswith("--extra-index-url") else ln for ln in text.splitlines()]
    assert any(ln.startswith("--find-links") for ln in lines), "the Space's requirements name no torch index"
    out = tmp_path / "requirements-here.txt"
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.slow
def test_fresh_venv_from_the_space_requirements_serves_and_reads_text(space, tmp_path):
    """The Space as its builder makes it: after the Debian packages of packages.txt, a fresh venv installed
    from the Space's requirements.txt alone, with PyPI as the only index (no pip.conf, no local wheels or
    mirrors). One exception, because that host cannot be reached here: torch's CPU index line is replaced by
    the same CPU wheel from /opt/wheels (space_requirements_here). Then, in that venv: no CUDA wheels, the
    GUI opencv-python (not the headless one), mmre_demo's TextReader (from the folder) reads SPOTIFY in a
    drawn image, and app.py serves from the folder and predicts."""
    apt = (space / "packages.txt").read_text().split()
    missing = _missing_debian_packages(apt)
    if missing:
        pytest.skip(f"Debian packages of packages.txt not installed: apt-get install {' '.join(missing)}")
    reason = _unreachable("https://pypi.org/simple/rapidocr-onnxruntime/")
    if reason:
        pytest.skip(f"PyPI unreachable ({reason}): the fresh venv cannot be installed")
    reqs = space_requirements_here(space, tmp_path)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    # pip as the Space's builder runs it: PyPI alone (no pip.conf, no find-links), with the CA bundle
    pip_env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    pip_env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    res = subprocess.run([python, "-m", "pip", "install", "-q", "-r", str(reqs)], env=pip_env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]

    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], env=pip_env, capture_output=True,
                            text=True, check=True)
    installed = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
    assert not [n for n in installed if n.startswith("nvidia-")], "CUDA wheels in the Space's venv"
    assert installed["torch"].endswith("+cpu"), installed["torch"]
    assert "opencv-python" in installed and "opencv-python-headless" not in installed

    image = tmp_path / "spotify.png"
    draw_text(image, "SPOTIFY")
    code = ("import json, sys; from mmre_demo.encoders.ocr import TextReader; "
            "r = TextReader(); ok = r.load(); "
            "lines = [ln.text for ln in r.read(sys.argv[1]).lines] if ok else []; "
            "print(json.dumps({'loaded': ok, 'lines': lines}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(space)
    out = subprocess.run([python, "-c", code, str(image)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["loaded"], out.stderr[-3000:]
    assert any("SPOTIFY" in t.upper() for t in seen["lines"]), seen

    folder = tmp_path / "space"
    shutil.copytree(space, folder)
    serve_and_predict(python, folder, tmp_path)
