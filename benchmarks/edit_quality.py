"""Editing quality of a model on MovingShapes clips with ground truth: masked recolouring and
video-to-video (SDEdit) recolouring, scored by vidiff's own probes. Prints one JSON line per configuration,
then a markdown table of all of them, and writes them to ``--out`` (JSON).

Clips: MovingShapes test items (``EVAL_DATA_SEED``, never seen in training), one object, on black or
on a textured background (the clip's shape composited over a 96x96 crop, resized to the frame, of the
photographs scikit-learn ships: ``sklearn.datasets.load_sample_images``). Each clip gets a new colour
(the next colour, in palette order, that the training split pairs with its shape) and the prompt
``a <new colour> <shape> moving <direction>``.

* ``masked``: the mask is the object's box grown by 2 px, per frame; edit with ``--mask`` (strength 1,
  RePaint with R resampling jumps). Figures: PSNR outside the mask against the input (``inf`` =
  identical), on black the shapes probe (colour, shape, direction), the colour on any background
  (the palette colour most pixels inside the mask are within 0.3 of), and the border error: mean |output - input| over the ring of background pixels just
  inside the mask (how well the regenerated region continues its surroundings).
* ``continue``: regenerate frames 8-15 from frames 0-7 with the same prompt, by RePaint (a mask of
  whole frames) or by the model's frame-mask channels (generation with known frames: the way the
  model was trained for continuation). Figures: the shapes probe and the centroid track error of the
  new frames against the ground truth's continuation.
* ``sdedit``: the whole clip is edited with ``--strength S`` (and ``--structure G``, the share of
  the steps that keep the input's brightness). Figures: the shapes probe's colour and shape
  verdicts, the centroid track error against the input's ground-truth track (mean distance over
  frames, px; a clip whose object is missing in over half the frames counts as a miss), the share
  within 3 px, the share both recoloured and within 3 px, and the PSNR against the ground truth of
  the recolouring (the input's object drawn in the new colour).

Run (the figures in docs/editing.md; each part alone, about 15 minutes on one CPU thread):
    OMP_NUM_THREADS=1 python benchmarks/edit_quality.py --parts masked-black masked-textured --resample 0 2
    OMP_NUM_THREADS=1 python benchmarks/edit_quality.py --parts sdedit-black --strengths 0.375 0.5 0.625 0.75 0.875
    OMP_NUM_THREADS=1 python benchmarks/edit_quality.py --parts sdedit-black --strengths 0.75 1 --structures 0 0.25 0.5 0.75
    OMP_NUM_THREADS=1 python benchmarks/edit_quality.py --parts continue-black --resample 0
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from vidiff.data.folder import resize_crop
from vidiff.data.shapes import COLOURS, TRAIN_PAIRS, MovingShapes, caption_for
from vidiff.eval.extract import detect_objects, track_objects
from vidiff.eval.probes import score_shapes
from vidiff.eval.runner import EVAL_DATA_SEED
from vidiff.pipeline import VideoPipeline
from vidiff.runtime import DEFAULT_MODEL


def clips(num: int, size: int, frames: int) -> list[dict]:
    """Test clips with a new colour and its prompt, a box mask (T, H, W) and the object's masks."""
    data = MovingShapes(num, split="train", num_frames=frames, size=size, seed=EVAL_DATA_SEED)
    out = []
    for i in range(num):
        item = data[i]
        obj = item["gt"]["objects"][0]
        palette = list(COLOURS)
        start = palette.index(obj["colour"])
        new = next(
            c for c in palette[start + 1 :] + palette[:start] if (c, obj["shape"]) in TRAIN_PAIRS
        )
        box = torch.zeros(frames, size, size, dtype=torch.bool)
        for t, (x0, y0, x1, y1) in enumerate(obj["boxes"].tolist()):
            xa, ya = max(0, math.floor(x0) - 2), max(0, math.floor(y0) - 2)
            box[t, ya : math.ceil(y1) + 2, xa : math.ceil(x1) + 2] = True
        prompt = caption_for([{**obj, "colour": new}])
        out.append({"video": item["video"], "gt": obj, "new": new, "prompt": prompt, "box": box})
    return out


def textured(items: list[dict], seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each clip's object composited over a static photographic background, and that background
    ``(3, 1, S, S)``. A crop is redrawn (up to 50 times) until both the old and the new colour differ
    from the background under the object's path by at least 0.5 (Chebyshev) in 90% of its pixels:
    a colour the background hides cannot be seen, by a probe or a viewer."""
    from sklearn.datasets import load_sample_images

    photos = [
        torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255
        for im in load_sample_images().images
    ]
    rng = np.random.default_rng(seed)
    out, backgrounds = [], []
    for i, it in enumerate(items):
        v = it["video"]  # (3, T, S, S) on black: the coverage is its max channel (palette colours)
        photo = photos[i % len(photos)]
        path = it["gt"]["masks"].any(0)  # (S, S)
        for _ in range(50):
            y, x = rng.integers(0, photo.shape[1] - 96), rng.integers(0, photo.shape[2] - 96)
            bg = resize_crop(photo[:, None, y : y + 96, x : x + 96], v.shape[-2:])  # (3, 1, S, S)
            under = bg[:, 0][:, path].T  # (N, 3)
            if all(
                float(((under - torch.tensor(COLOURS[c])).abs().amax(1) >= 0.5).float().mean())
                >= 0.9
                for c in (it["gt"]["colour"], it["new"])
            ):
                break
        cov = v.max(0, keepdim=True).values
        out.append(bg * (1 - cov) + v)
        backgrounds.append(bg)
    return out, backgrounds


def recoloured(item: dict, background: torch.Tensor) -> torch.Tensor:
    """The ground truth of the edit: the clip's object in its new colour over ``background``."""
    cov = item["video"].max(0, keepdim=True).values  # (1, T, S, S)
    return background * (1 - cov) + cov * torch.tensor(COLOURS[item["new"]]).view(3, 1, 1, 1)


def foreground(
    video: torch.Tensor, background: torch.Tensor, threshold: float = 0.25
) -> torch.Tensor:
    """The clip with every pixel within ``threshold`` (Chebyshev) of the known ``background`` made
    black: what the shapes probe, which reads objects off a uniform background, can score. On the
    recoloured ground truth over textures it reads every colour, shape and direction (the ``input``
    row of the masked-textured part)."""
    near = (video - background).abs().amax(0, keepdim=True) <= threshold
    return torch.where(near, torch.zeros_like(video), video)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def ring(box: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    """Pixels just inside the mask (1 px) that are background in the input, (T, H, W) bool."""
    inner = np.stack([ndimage.binary_erosion(b, iterations=1) for b in box.numpy()])
    grown = np.stack([ndimage.binary_dilation(o, iterations=1) for o in obj.numpy()])
    return torch.from_numpy(box.numpy() & ~inner & ~grown)


def masked(pipe, items, videos, bgs, setting, seed: int, batch: int) -> list[dict]:
    """``setting``: None (the recoloured ground truth itself, through the probe), or
    ``(resample, layered)``."""
    rows = []
    for a in range(0, len(items), batch):
        part = items[a : a + batch]
        x = torch.stack(videos[a : a + batch])
        mask = torch.stack([it["box"] for it in part])
        seeds = [seed + a + j for j in range(len(part))]
        if setting is None:
            out = torch.stack([recoloured(it, bg) for it, bg in zip(part, bgs[a : a + batch])])
        else:
            r, layered = setting
            prompts = [it["prompt"] for it in part]
            out = pipe.edit(x, prompts, seeds, mask=mask, resample=r, layered=layered)
        for it, inp, res, m, bg in zip(part, x, out, mask, bgs[a : a + batch]):
            keep = ~m[None].expand_as(inp)
            objpix = it["gt"]["masks"]  # (T, H, W)
            v = score_shapes(foreground(res, bg), it["prompt"])
            row = {
                "psnr_out": psnr(res[keep], inp[keep]),
                "ring_err": float((res - inp).abs().mean(0)[ring(m, objpix)].mean()),
                **{k: v[k] for k in ("colour_ok", "shape_ok", "direction_ok", "correct")},
            }
            rows.append(row)
    return rows


def track_error(video: torch.Tensor, gt: dict) -> float:
    """Mean distance (px) of the probe's centroid track from the ground truth; inf when the object
    is missing in over half the frames."""
    (track,) = track_objects(detect_objects(video.numpy()), 1)
    if track.present.mean() < 0.5:
        return math.inf
    d = np.linalg.norm(track.centroids - gt["centroids"].numpy(), axis=1)
    return float(np.nanmean(d))


def sdedit(pipe, items, videos, setting, seed: int, batch: int) -> list[dict]:
    """``setting``: ``(strength, structure)``, or None for the input itself."""
    rows = []
    black = torch.zeros(3, 1, pipe.size, pipe.size)
    for a in range(0, len(items), batch):
        part = items[a : a + batch]
        x = torch.stack(videos[a : a + batch])
        seeds = [seed + a + j for j in range(len(part))]
        if setting is None:  # the input itself: the probe's own error on ground truth
            out = x
        else:
            strength, structure = setting
            out = pipe.edit(
                x, [it["prompt"] for it in part], seeds, strength=strength, structure=structure
            )
        for it, res in zip(part, out):
            v = score_shapes(res, it["prompt"])
            err = track_error(res, it["gt"])
            row = track_row(v, err)
            row["recoloured_on_track"] = float(err <= 3.0 and v["colour_ok"] == 1.0)
            row["psnr_target"] = psnr(res, recoloured(it, black))
            rows.append(row)
    return rows


def track_row(verdict: dict, err: float) -> dict:
    """One edited clip's row: its centroid-track error (px) and whether it is within 3 px, and the
    shapes probe's colour / shape / direction verdicts."""
    return {
        "track_err": err,
        "track_ok": float(err <= 3.0),
        **{k: verdict[k] for k in ("colour_ok", "shape_ok", "direction_ok")},
    }


def continuation(pipe, items, method: str, seed: int, batch: int, known: int = 8) -> list[dict]:
    """Regenerate every frame from ``known`` on (the same prompt) by RePaint (``repaint-R``, a mask of
    whole frames) or by the model's frame-mask channels (``frames``: generation with known frames)."""
    rows = []
    for a in range(0, len(items), batch):
        part = items[a : a + batch]
        x = torch.stack([it["video"] for it in part])
        prompts = [caption_for([it["gt"]]) for it in part]
        seeds = [seed + a + j for j in range(len(part))]
        t = x.shape[2]
        if method == "frames":
            fm = torch.zeros(len(part), t, dtype=torch.bool)
            fm[:, :known] = True
            out = pipe.generate(prompts, seeds, known_frames=x, frame_mask=fm)
        else:
            mask = torch.zeros(len(part), *x.shape[2:], dtype=torch.bool)
            mask[:, known:] = True
            r = int(method.split("-")[1])
            out = pipe.edit(x, prompts, seeds, mask=mask, resample=r, frame_channels=False)
        for it, res, p in zip(part, out, prompts):
            v = score_shapes(res, p)
            (track,) = track_objects(detect_objects(res.numpy()), 1)
            gt = it["gt"]["centroids"].numpy()
            d = np.linalg.norm(track.centroids[known:] - gt[known:], axis=1)
            err = float(np.nanmean(d)) if track.present[known:].mean() >= 0.5 else math.inf
            rows.append(track_row(v, err))
    return rows


def summary(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    for k in rows[0]:
        xs = np.array([r[k] for r in rows], dtype=np.float64)
        if k == "psnr_out":
            out["psnr_out_min"] = float(xs.min())
            out["psnr_out_exact"] = float(np.isinf(xs).mean())
        elif k == "psnr_target":
            out["psnr_target_median"] = float(np.median(xs))
        elif k == "track_err":
            out["track_err_median"] = float(np.median(xs))
        else:
            out[k] = float(xs.mean())
    return out


COLUMNS = ["psnr_out_min", "psnr_out_exact", "colour_ok", "shape_ok",
           "direction_ok", "ring_err", "track_ok", "track_err_median", "recoloured_on_track",
           "psnr_target_median"]  # fmt: skip


def table(results: list[dict]) -> str:
    """A markdown table of the summaries (a blank where a figure does not apply)."""
    head = ["edit", "background", "setting", "n", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        setting = r.get("method", r.get("strength"))
        if r.get("structure"):
            setting = f"{setting}, structure {r['structure']:g}"
        cells = [
            r["edit"],
            r["background"],
            "input" if setting is None else str(setting),
            str(r["n"]),
        ]
        cells += ["" if k not in r else f"{r[k]:.3g}" for k in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--num-clips", type=int, default=64)
    ap.add_argument(
        "--parts", nargs="+", default=["masked-black", "masked-textured", "sdedit-black"]
    )
    ap.add_argument("--resample", nargs="+", type=int, default=[0, 1])
    ap.add_argument(
        "--methods", nargs="+", default=["repaint", "layered"], choices=["repaint", "layered"]
    )
    ap.add_argument("--strengths", nargs="+", type=float, default=[0.25, 0.5, 0.75])
    ap.add_argument("--structures", nargs="+", type=float, default=[0.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="benchmarks/results/edit_quality.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe = VideoPipeline.load(args.model)
    items = clips(args.num_clips, pipe.size, pipe.num_frames)
    black = torch.zeros(3, 1, pipe.size, pipe.size)
    backgrounds = {"black": ([it["video"] for it in items], [black] * len(items))}
    results = []
    for part in args.parts:
        kind, bg = part.split("-")
        if bg not in backgrounds:
            backgrounds[bg] = textured(items)
        videos, bgs = backgrounds[bg]
        if kind == "continue":
            for method in ["frames", *(f"repaint-{r}" for r in args.resample)]:
                t = time.time()
                rows = continuation(pipe, items, method, args.seed, args.batch_size)
                name = {"edit": "continue", "background": bg, "method": method}
                results.append({**name, **summary(rows), "seconds": round(time.time() - t)})
                print(json.dumps(results[-1]), flush=True)
            continue
        if kind == "masked":
            settings = [None] + [(r, m == "layered") for m in args.methods for r in args.resample]
        else:
            settings = [None] + [(s, g) for s in args.strengths for g in args.structures]
        for s in settings:
            t = time.time()
            if kind == "masked":
                rows = masked(pipe, items, videos, bgs, s, args.seed, args.batch_size)
                method = "input" if s is None else f"{'layered' if s[1] else 'repaint'} R{s[0]}"
                name = {"edit": "mask", "background": bg, "method": method}
            else:
                rows = sdedit(pipe, items, videos, s, args.seed, args.batch_size)
                name = {"edit": "strength", "background": bg}
                if s is not None:
                    name.update(strength=s[0], structure=s[1])
            results.append({**name, **summary(rows), "seconds": round(time.time() - t)})
            print(json.dumps(results[-1]), flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.is_file() else []
    key = lambda r: tuple(
        r.get(k) for k in ("edit", "background", "method", "strength", "structure")
    )
    keep = [r for r in previous if key(r) not in {key(r2) for r2 in results}]
    path.write_text(json.dumps(keep + results, indent=1) + "\n")
    print(table(keep + results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
