"""``vidiff serve``: a local web app (Gradio) over exported models.

* :mod:`vidiff.app.catalog` -- which models the app offers (the ones shipped in ``vidiff/assets`` plus
  any ``--model DIR``) and a model card with each one's recorded ``eval.json`` figures;
* :mod:`vidiff.app.studio` -- turns one request (model, prompt, seed, steps, optional first frame) into
  an ``.mp4`` file, loading each model once; no Gradio import, so it is tested on its own;
* :mod:`vidiff.app.ui` -- the Gradio page and its ``generate`` API endpoint;
* :mod:`vidiff.commands.serve` -- the ``serve`` command (in the commands layer).

Gradio is an optional extra (``pip install 'vidiff[app]'``), imported only when the app is built.
"""
