"""``vidiff serve``: the web app over the shipped models (and any ``--model DIR``)."""

from __future__ import annotations

import tempfile

from vidiff.errors import UserError


def serve(
    *,
    port: int = 7860,
    host: str = "127.0.0.1",
    model: list[str] | None = None,
    device: str = "auto",
) -> None:
    """Serve a web page for making videos: prompt, seed, steps, model picker, image to video.

    Open http://HOST:PORT in a browser. The page's Generate is also the API endpoint `generate`
    (prompt, seed) -> video for gradio_client. `--model DIR` adds exported model folders to the shipped
    ones. Nothing leaves this machine (no share link, no analytics); `--host 0.0.0.0` opens it to the
    local network. Needs the app extra: pip install 'vidiff[app]'.

    Args:
        port: the TCP port to listen on (1..65535).
        host: the address to listen on; 127.0.0.1 keeps the page on this machine.
        model: exported model folders (or shipped names) to offer beside the shipped ones.
        device: cpu, cuda, cuda:N or auto (the GPU when there is one).
    """
    from vidiff.app.catalog import find_models
    from vidiff.app.studio import Studio
    from vidiff.app.ui import build_app, launch, require_gradio
    from vidiff.runtime import resolve_device

    if not 0 < port < 65536:
        raise UserError(f"--port must be in 1..65535, got {port}")
    device = resolve_device(device)  # checked before anything loads
    models = find_models(model)
    require_gradio()
    with tempfile.TemporaryDirectory(prefix="vidiff-serve-") as out_dir:
        studio = Studio(models, out_dir, device=device)
        studio.pipeline(None)  # load the default model now, not on the first Generate
        print(f"vidiff serve: {len(models)} model(s) ({', '.join(models)}); http://{host}:{port}")
        launch(build_app(studio), studio, host=host, port=port, block=True)
