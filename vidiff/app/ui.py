"""The ``vidiff serve`` web page (Gradio Blocks) over a :class:`~vidiff.app.studio.Studio`.

The page: model picker with each model's card and recorded figures, prompt, seed, sampler steps, an
optional first frame (image to video), a Generate button with sampler progress, and the video. Bad
input (an unknown word, a bad seed, a model without frame conditioning given a first frame) comes back
as a message in the page (``gr.Error``); the app stays up.

The Generate button's event is also the API endpoint ``generate``: ``(prompt, seed)`` and, optionally,
model, steps and first frame (the page's defaults otherwise), returning the video; ``gradio_client``
calls it as ``Client(url).predict("a red circle moving right", 3, api_name="/generate")``.
"""

from __future__ import annotations

import os

from vidiff.app.catalog import model_card
from vidiff.app.studio import Studio

TITLE = "vidiff: text to video on this machine"
INTRO = (
    "Type a prompt and press **Generate**: a small diffusion model turns noise into a short video, on "
    "this computer, with no download and no GPU needed. The same prompt and seed give the same video; "
    "change the seed for another one. Give a first frame to animate an image instead."
)
EXAMPLES = [
    ["a red circle moving right", 0],
    ["a green square moving up", 1],
    ["a yellow triangle moving right", 2],
    ["a white circle moving down", 3],
]
# Tiny videos are shown enlarged with sharp pixels rather than blurred.
CSS = "#video video { image-rendering: pixelated; }"


def require_gradio():
    """Import gradio (the ``app`` extra), or raise a one-line error saying how to install it.

    Gradio's analytics and version check are switched off first, so the app makes no call outside
    this machine.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import gradio
    except ImportError:
        raise ValueError("vidiff serve needs gradio: pip install 'vidiff[app]'") from None
    return gradio


def build_app(studio: Studio):
    """The Gradio Blocks app serving ``studio``'s models (not launched)."""
    gr = require_gradio()
    first = studio.info(None)

    def generate(prompt, seed, model, steps, first_frame=None, progress=gr.Progress()):  # noqa: B008
        """Generate one video for (prompt, seed) with the chosen model; returns the .mp4 file."""
        return run_generate(studio, prompt, seed, model, steps, first_frame, progress)

    def pick(name):
        info = studio.info(name)
        return (
            gr.update(value=info.steps, info=_steps_info(info)),
            gr.update(interactive=info.image_to_video),
            model_card(info),
        )

    with gr.Blocks(title="vidiff", analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}\n\n{INTRO}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                model = gr.Dropdown(
                    list(studio.models), value=first.name, label="Model", interactive=True
                )
                prompt = gr.Textbox(
                    label="Prompt", placeholder="a red circle moving right", elem_id="prompt"
                )
                with gr.Row():
                    seed = gr.Number(value=0, label="Seed", precision=0, minimum=0)
                    steps = gr.Slider(
                        1, 64, value=first.steps, step=1, label="Sampler steps",
                        info=_steps_info(first),
                    )  # fmt: skip
                first_frame = gr.Image(
                    label="First frame (optional): image to video",
                    type="filepath",
                    sources=["upload"],
                    height=160,
                    interactive=first.image_to_video,
                )
                button = gr.Button("Generate", variant="primary", elem_id="generate")
                gr.Examples(EXAMPLES, inputs=[prompt, seed], label="Try")
            with gr.Column(scale=1):
                video = gr.Video(
                    label="Video", autoplay=True, loop=True, interactive=False, elem_id="video",
                    height=320,
                )  # fmt: skip
                card = gr.Markdown(model_card(first))
        inputs = [prompt, seed, model, steps, first_frame]
        button.click(generate, inputs, video, api_name="generate")
        prompt.submit(generate, inputs, video, api_visibility="private")
        model.change(pick, model, [steps, first_frame, card], api_visibility="private")
    return app


def run_generate(
    studio: Studio, prompt, seed, model, steps, first_frame=None, progress=None
) -> str:
    """The Generate button: a video file path, or ``gr.Error`` carrying the user's mistake (shown in
    the page; the app goes on). ``progress`` is a ``gr.Progress`` (None: no progress shown)."""
    gr = require_gradio()
    report = None
    if progress is not None:
        progress(0, desc="loading the model")
        report = lambda done, total: progress((done, total), desc="sampling", unit="steps")
    try:
        path = studio.generate(
            prompt, seed, model=model, steps=steps, first_frame=first_frame, progress=report
        )
    except (ValueError, FileNotFoundError) as e:
        raise gr.Error(str(e), print_exception=False) from None
    return str(path)


def _steps_info(info) -> str:
    distilled = info.config.diffusion.distilled
    if distilled:
        return f"distilled for {info.steps}; other counts run but were not measured"
    return f"the model's default is {info.steps}"


def launch(app, studio: Studio, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Start the server on ``host:port`` (no public share link, no analytics, no server-side
    rendering; it serves files from ``studio.out_dir`` only); with ``block=False`` return once it is
    up (tests: ``app.close()`` stops it), else serve until interrupted."""
    app.queue(default_concurrency_limit=1).launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        show_error=True,
        quiet=not block,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        run_history=False,
        enable_monitoring=False,
        css=CSS,
        allowed_paths=[str(studio.out_dir.resolve())],
    )
