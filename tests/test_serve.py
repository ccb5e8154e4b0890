"""`vidiff serve`: the model catalogue, the studio behind the page, the `generate` API endpoint through
gradio_client, and a real headless Chromium (Debian's) pressing Generate on the page.

Gradio (the `app` extra), playwright and a `chromium` on PATH are needed for the last parts; without
them those tests skip saying what is missing, except under CI (CI=true), where they fail: CI must run
them. Servers listen on 127.0.0.1 only, on a free port, and are closed at the end of the module.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.test_pipeline import micro_pipeline
from vidiff import cli
from vidiff.app.catalog import find_models, model_card, read_model
from vidiff.app.studio import Studio
from vidiff.commands import sample as commands
from vidiff.data.video_io import read_video

PROMPT = "a red circle moving right"


def _need(what: str, why: str):
    """Skip for want of ``what`` -- or fail under CI, which must run every test here."""
    message = f"{what} is not installed ({why})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run this test but {message}")
    pytest.skip(message)


def _gradio():
    try:
        import gradio
    except ImportError:
        _need("gradio", "pip install 'vidiff[app]'")
    return gradio


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    return Studio(find_models(), tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`vidiff serve` itself, in a child process on 127.0.0.1:<free port>; stopped with Ctrl-C
    (SIGINT) after the module, as a user stops it."""
    _gradio()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio")),  # not /tmp/gradio
        "OMP_NUM_THREADS": "1",  # as the tests' own process (conftest): no thread contention
    }
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with open(log, "w") as out:
        command = [sys.executable, "-m", "vidiff.cli", "serve", "--port", str(port)]
        proc = subprocess.Popen(
            [*command, "--device", "cpu"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vidiff serve did not come up:\n{log.read_text()}")
                time.sleep(0.25)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- catalogue and studio (no gradio needed) -------------------------------------------------------


def test_catalog_lists_the_shipped_model_with_its_figures(tmp_path):
    models = find_models()
    assert list(models)[0] == "default-model"
    info = models["default-model"]
    assert info.steps == 8 and info.image_to_video and "circle" in info.vocabulary
    card = model_card(info)
    row = info.figures["rows"][0]
    # the recorded figures appear, formatted: adherence as a percentage, the command that made them
    assert f"{row['adherence']:.1%}" in card and f"{row['adherence_heldout']:.1%}" in card
    assert info.figures["command"] in card and "8 ddim steps" in card

    extra = tmp_path / "micro"
    micro_pipeline("model.frame_conditioning=false").save(extra)
    models = find_models([str(extra)])
    assert list(models)[0] == "default-model" and list(models)[-1] == "micro"
    assert {"shapes-trajectory", "shapes-keyframes"} <= set(models)
    traj = model_card(models["shapes-trajectory"])  # a control model's figures, by name
    assert "trajectory: both endpoints within 3 px" in traj and "adherence" not in traj
    assert not models["micro"].image_to_video
    assert "No measured figures" in model_card(models["micro"])
    with pytest.raises(FileNotFoundError, match="missing config.json"):
        read_model(tmp_path / "nothing")


def test_studio_makes_what_vidiff_generate_makes(studio, tmp_path):
    path = studio.generate(PROMPT, 3)
    video, fps = read_video(path)
    assert path.suffix == ".mp4" and video.shape == (3, 16, 32, 32) and fps == 8
    # the same request through `vidiff generate` gives the same frames (same model, seed, steps)
    (reference,) = commands.generate(PROMPT, seed=3, out=str(tmp_path / "ref.mp4"), device="cpu")
    # Equal up to the H.264 encoder: under load a pixel may round to its neighbouring level.
    expected = read_video(reference)[0]
    torch.testing.assert_close(video, expected, rtol=0, atol=1 / 255 + 1e-6)
    assert (video - expected).abs().mean() < 1e-3


def test_studio_image_to_video_starts_from_the_given_frame(studio, tmp_path):
    image = tmp_path / "first.png"
    Image.new("RGB", (64, 64), (0, 0, 255)).save(image)  # resized to the model's 32 x 32
    steps = []
    video, _ = read_video(
        studio.generate(PROMPT, 0, first_frame=image, progress=lambda i, n: steps.append((i, n)))
    )
    assert video.shape[1] == 16
    first = video[:, 0].mean((1, 2))
    assert torch.allclose(first, torch.tensor([0.0, 0.0, 1.0]), atol=0.05), first
    assert steps == [(i, 8) for i in range(1, 9)]  # progress after each of the 8 steps


def test_studio_rejects_bad_requests_naming_the_culprit(studio, tmp_path):
    with pytest.raises(ValueError, match="unknown word 'purple'"):
        studio.generate("a purple circle moving right", 0)
    with pytest.raises(ValueError, match="type a prompt"):
        studio.generate("  ", 0)
    with pytest.raises(ValueError, match="seed must be a whole number >= 0"):
        studio.generate(PROMPT, -1)
    with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
        studio.generate(PROMPT, 0, steps=2.5)
    with pytest.raises(ValueError, match="unknown model 'nope'; this server has: default-model"):
        studio.generate(PROMPT, 0, model="nope")
    with pytest.raises(FileNotFoundError, match="no such image file"):
        studio.generate(PROMPT, 0, first_frame=tmp_path / "missing.png")
    micro = tmp_path / "micro"
    micro_pipeline("model.frame_conditioning=false").save(micro)
    image = tmp_path / "first.png"
    Image.new("RGB", (8, 8)).save(image)
    other = Studio({"micro": read_model(micro)}, tmp_path / "out")
    with pytest.raises(ValueError, match="without frame conditioning"):
        other.generate(PROMPT, 0, first_frame=image)


def test_serve_command_checks_its_options(capsys):
    assert cli.main(["serve", "--port", "70000"]) == 2
    assert "--port must be in 1..65535" in capsys.readouterr().err
    assert cli.main(["serve", "--model", "/no/such/model"]) == 2
    assert "--model /no/such/model: no such model folder" in capsys.readouterr().err


def test_missing_gradio_is_one_line_saying_how_to_install(monkeypatch):
    from vidiff.app.ui import require_gradio

    monkeypatch.setitem(__import__("sys").modules, "gradio", None)  # import gradio -> ImportError
    with pytest.raises(ValueError, match=r"pip install 'vidiff\[app\]'"):
        require_gradio()


# --- the page's handler, the API endpoint, and a real browser --------------------------------------


def test_page_handler_returns_a_video_or_an_error_message(studio):
    gr = _gradio()
    from vidiff.app.ui import run_generate

    video, _ = read_video(run_generate(studio, PROMPT, 1, "default-model", 8))
    assert video.shape[1] == 16
    with pytest.raises(gr.Error, match="unknown word 'purple'"):
        run_generate(studio, "a purple circle", 1, "default-model", 8)


def test_gradio_client_calls_the_generate_endpoint(server, tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False, download_files=str(tmp_path))
    result = client.predict(PROMPT, 5, api_name="/generate")
    path = result["video"] if isinstance(result, dict) else result
    assert Path(path).is_relative_to(tmp_path) and path.endswith(".mp4")
    video, _ = read_video(path)
    assert video.shape == (3, 16, 32, 32)
    with pytest.raises(AppError, match="unknown word 'purple'"):
        client.predict("a purple circle moving right", 5, api_name="/generate")
    # the error left the app alive: the next request works
    again = client.predict("a green square moving up", 2, api_name="/generate")
    assert read_video(again["video"] if isinstance(again, dict) else again)[0].shape[1] == 16


def test_headless_chromium_presses_generate_and_gets_a_video(server, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright", "pip install 'vidiff[dev]'")
    browser_path = os.environ.get("VIDIFF_CHROMIUM") or shutil.which("chromium")
    if browser_path is None:
        _need("chromium", "apt-get install chromium; or set VIDIFF_CHROMIUM to a Chromium binary")
    with sync_playwright() as p:
        # A given executable: playwright never fetches a browser of its own.
        browser = p.chromium.launch(executable_path=browser_path, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server)
            page.locator("#prompt textarea").fill("a purple circle moving right")
            page.locator("#generate").click()
            # the user's mistake shows in the page, and the page goes on working
            page.get_by_text("unknown word 'purple'").first.wait_for(timeout=30_000)
            page.locator("#prompt textarea").fill(PROMPT)
            page.locator("#generate").click()
            src = page.wait_for_selector("#video video[src]", timeout=45_000).get_attribute("src")
            if shot := os.environ.get("VIDIFF_SCREENSHOT"):
                page.wait_for_timeout(1000)
                page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()
    assert src.startswith(server), src  # served by this server, on the loopback address
    file = tmp_path / "from-browser.mp4"
    with urllib.request.urlopen(src, timeout=10) as response:
        file.write_bytes(response.read())
    video, _ = read_video(Path(file))
    assert video.shape[1] >= 16
