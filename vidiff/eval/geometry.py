"""The geometric shape probe: how much of its box an object fills, and how full its corners are.

A second, model-free reading of MovingShapes' shapes beside the CNN judge (:mod:`vidiff.eval.judges`),
which learned its boundaries from ground-truth renders alone and may call a rounded square a square.
Here a shape is read from three numbers that a person's eye also uses, each a fraction of the
object's box (so they do not depend on its size, position or colour):

* ``fill``: the object's area over its box area — square 1, circle pi/4, apex-up triangle 1/2;
* ``top_corners`` / ``bottom_corners``: the mean coverage of the box's two upper / two lower corner
  cells (each a quarter of the box side) — a square fills all four, a circle's are mostly empty
  (rounded corners), a triangle's top corners are empty and its bottom ones full;
* ``top_band``: the mean coverage of the box's top quarter — a fifth for a triangle's pointed apex,
  more for a blunt (cut-off) one, 0.6 for a circle, all of it for a square;
* ``log_aspect``: log(height / width) of the box — 0 for every shape the dataset draws.

The box is the object's soft extent: its width is the sum over columns of the column's largest
coverage (so an anti-aliased edge column counts by its coverage), likewise its height, centred on
the coverage-weighted centre of those profiles; the corner cells are sampled bilinearly on a
:data:`GRID` x :data:`GRID` grid spanning that box. For a square both the area and the box are exact
and its fill is 1 to rounding.

A frame's shape is ``other`` when its box's sides differ by more than :data:`MAX_ASPECT` (a
rectangle or an ellipse is none of the three shapes); otherwise the nearest (Euclidean, on the four
fractions) of the three ground-truth prototypes: the median features
of ground-truth renders (:func:`vidiff.data.shapes.render_shape`, the dataset's own rasteriser) over
the dataset's radius range and sub-pixel offsets at the clip's frame size (:func:`prototypes`), so
the decision boundaries are the midpoints between what the dataset draws. A tracked object's shape
is the majority over the frames it is seen in.
"""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
from scipy import ndimage

from vidiff.eval.extract import Track

FEATURES = ("fill", "top_corners", "bottom_corners", "top_band", "log_aspect")
# A box whose sides differ by more than this factor is no dataset shape; ground-truth boxes differ
# by under 7% (the soft extent shaves a triangle's apex), a 1.25 : 1 rectangle is plainly oblong.
MAX_ASPECT = 1.25
GRID = 16  # the box is resampled on GRID x GRID points
CORNER = 4  # a corner cell is CORNER x CORNER of those points: a quarter of the box side
_EIGHT = np.ones((3, 3), dtype=bool)


def shape_features(alpha: np.ndarray) -> np.ndarray:
    """``(fill, top_corners, bottom_corners, top_band, log_aspect)`` of one object's soft coverage ``alpha (H, W)``
    (zero outside the object); NaNs when it is empty. See the module docstring."""
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"expected one object's coverage (H, W), got shape {a.shape}")
    cols, rows = (
        a.max(axis=0),
        a.max(axis=1),
    )  # (W,), (H,): the object's horizontal/vertical profile
    w, h = float(cols.sum()), float(rows.sum())
    if w <= 0 or h <= 0:
        return np.full(len(FEATURES), np.nan, dtype=np.float32)
    cx = float((cols * (np.arange(a.shape[1]) + 0.5)).sum() / w)  # pixel centres at +0.5
    cy = float((rows * (np.arange(a.shape[0]) + 0.5)).sum() / h)
    u = (np.arange(GRID) + 0.5) / GRID - 0.5  # grid point centres in units of the box side
    ys, xs = np.meshgrid(cy + u * h - 0.5, cx + u * w - 0.5, indexing="ij")  # -> array indices
    box = ndimage.map_coordinates(a, [ys, xs], order=1, mode="grid-constant", cval=0.0)
    k = CORNER
    top = (box[:k, :k].mean() + box[:k, -k:].mean()) / 2
    bottom = (box[-k:, :k].mean() + box[-k:, -k:].mean()) / 2
    return np.array(
        [a.sum() / (w * h), top, bottom, box[:k].mean(), np.log(h / w)], dtype=np.float32
    )


@functools.lru_cache(maxsize=8)
def prototypes(size: int) -> dict[str, tuple[float, ...]]:
    """Median :func:`shape_features` of ground-truth renders per shape at frame size ``size``: five
    radii across the dataset's range times 4 x 4 sub-pixel offsets of the centre."""
    from vidiff.data import shapes as shapes_data
    from vidiff.data.synthetic import REFERENCE_SIZE

    lo, hi = (r * size / REFERENCE_SIZE for r in shapes_data.RADIUS_RANGE)
    out = {}
    for shape in shapes_data.SHAPES:
        feats = []
        for r in np.linspace(lo, hi, 5):
            for ox in np.arange(4) / 4:
                for oy in np.arange(4) / 4:
                    c = size / 2 + 0.1
                    _, mask = render_coverage(shape, c + ox, c + oy, float(r), size)
                    feats.append(shape_features(mask))
        out[shape] = tuple(float(x) for x in np.median(np.stack(feats), axis=0))
    return out


def render_coverage(
    shape: str, cx: float, cy: float, r: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A ground-truth shape as the probe sees it: ``(coverage (H, W), coverage inside the
    extractor's object region (H, W))`` — the hard mask (coverage > 0.5) grown by one pixel."""
    from vidiff.data.shapes import render_shape

    image, mask = render_shape(shape, (1.0, 1.0, 1.0), cx, cy, r, size)
    cov = image[0].numpy()
    return cov, cov * ndimage.binary_dilation(mask.numpy(), structure=_EIGHT)


def classify(features: np.ndarray, size: int) -> list[str | None]:
    """The shape of each row of ``features (N, 5)``: ``other`` for an oblong box, else the nearest
    ground-truth prototype at frame size ``size``; ``None`` for rows with NaNs."""
    protos = prototypes(size)
    names = list(protos)
    ref = np.array([protos[n][:4] for n in names], dtype=np.float64)  # (S, 4): the fractions
    f = np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURES))
    dist = np.linalg.norm(f[:, None, :4] - ref[None], axis=-1)  # (N, S)
    oblong = np.abs(f[:, 4]) > np.log(MAX_ASPECT)
    return [
        None if not np.isfinite(fi).all() else "other" if ob else names[int(d.argmin())]
        for fi, d, ob in zip(f, dist, oblong)
    ]


def track_shapes(tracks: list[Track], alpha: np.ndarray) -> list[dict]:
    """The geometric reading of each tracked object: ``labels`` per frame (None where unseen),
    the majority ``label`` (None if never seen) and the median ``features`` over its frames.

    ``alpha (T, H, W)`` is the clip's soft coverage (:func:`vidiff.eval.extract.alpha_map`); each
    object is measured on it inside its mask grown by one pixel (its anti-aliased rim), as the
    CNN judge sees it.
    """
    size = alpha.shape[-1]
    out = []
    for tr in tracks:
        feats = np.full((len(tr.detections), len(FEATURES)), np.nan, dtype=np.float32)
        for t, d in enumerate(tr.detections):
            if d is not None:
                feats[t] = shape_features(alpha[t] * d.mask_dilated())
        seen = np.isfinite(feats).all(axis=1)
        labels = [lab if ok else None for lab, ok in zip(classify(feats, size), seen)]
        voted = Counter(x for x in labels if x is not None).most_common(1)
        med = np.median(feats[seen], axis=0) if seen.any() else np.full(len(FEATURES), np.nan)
        out.append({"labels": labels, "label": voted[0][0] if voted else None, "features": med})
    return out
