"""Focus-quality evaluation on phantom z-stacks: every model and metric side by side.

Two protocols; both pool every image or patch of every stack and report SRCC, PLCC and KRCC
between a model's blur score (higher = blurrier) and the truth |z − z*| in µm, ROC-AUC and PR-AUC
for "blurry" = |z − z*| ≥ 1 µm (about one depth of field of a 0.75 NA objective in green light,
λ/NA² ≈ 0.96 µm), and ``ms_per_mpx``, the scoring time per megapixel on this machine, measured in
the same run. Planes are at z* plus offsets from −3 to +3 µm every 0.5 µm (jittered, snapped to
0.1 µm), imaged as the phantom's scanner captures them (its sensor noise, as in the real scans
FocusPath holds) unless ``noise=False``.

* ``thesis`` (default; thesis Sec. 3.4.2 on FocusPath): ``n_stacks`` focal stacks of whole
  1024 × 1024 images, z* = the plane at which the image is sharpest. A model's score of an image is
  the mean of its 235-px patch scores at stride 128 over the image's tissue patches, exactly the
  score `finefocus fqa score` gives an image ("we densely sample the original patches with a stride
  of 128×128 and the average score is taken as the overall sharpness"). Rows also give
  ``within_stack_srcc``, the mean SRCC inside one stack (ordering one location's planes, free of
  calibration across locations). With ``noise=False`` the energy of Laplacian row measures the
  phantom's ceiling: that is the measure that defines z*, yet the section's depth makes its
  fall-off differ on the two sides of z*, so it orders |z − z*| imperfectly.
* ``patch``: ``n_stacks`` focal stacks of single 235-px patches, each with its own z*: how well one
  heatmap cell is scored, a harder task (one patch's content decides its score).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..evaluation import correlation_row, srcc
from ..phantom.seeds import check_evaluation_seed
from .dataset import IMAGE_PX, StackSet, phantom_digest, phantom_image_stacks, phantom_stacks
from .focuslitenn import load_model, weights_path
from .heatmap import GRID_STRIDE, PATCH, compute_heatmap
from .heatmap_source import scorer_for
from .metrics import METRICS, to_gray

BLURRY_UM = 1.0
SHIPPED_KERNELS = (1, 2, 10)
PROTOCOLS = ("thesis", "patch")
#: Default number of focal stacks per protocol (13 planes each).
DEFAULT_STACKS = {"thesis": 32, "patch": 96}


class EvalArgumentError(ValueError):
    """An evaluation request that cannot be run (reported to the user as one line)."""


#: Rendered evaluation stacks are kept here (per phantom version), so a second evaluation of the
#: same seed only scores.
EVAL_CACHE = Path("checkpoints") / "fqa-eval"


def evaluation_stacks(seed: int, n_stacks: int = 96, noise: bool = True, cache: Path | None = EVAL_CACHE) -> StackSet:
    """The patch stacks `evaluate` scores (``patch`` protocol), rendered once per (seed, stacks,
    noise, phantom version)."""
    check_evaluation_seed(seed, "focus-quality evaluation")   # engine.phantom.seeds
    path = None
    if cache is not None:
        path = Path(cache) / f"eval-{seed}-{n_stacks}-{'noisy' if noise else 'clean'}-{phantom_digest()}.npz"
        if path.exists():
            return StackSet.load(path)
    stacks = phantom_stacks([seed], n_stacks, rng_seed=seed + 7, noise=noise)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + ".part.npz")
            stacks.save(tmp)
            tmp.replace(path)
        except OSError:
            pass  # a read-only working folder: evaluate without the cache
    return stacks


def _flat(stacks: StackSet) -> tuple[np.ndarray, np.ndarray]:
    imgs = stacks.images.reshape((-1,) + stacks.images.shape[2:])
    return imgs, stacks.labels.reshape(-1)


def blur_scores(imgs: np.ndarray, models: dict) -> dict[str, tuple[np.ndarray, float]]:
    """{name: (scores oriented higher = blurrier, seconds)} for FocusLiteNN models and metrics."""
    out = {}
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255.0)
    for name, model in models.items():
        t = time.perf_counter()
        with torch.inference_mode():
            s = torch.cat([model(b) for b in x.split(256)]).numpy()
        out[name] = (s, time.perf_counter() - t)
    gray = to_gray(imgs)
    for name, metric in METRICS.items():
        t = time.perf_counter()
        s = metric.blur_score(metric.score_patches(gray))
        out[name] = (s, time.perf_counter() - t)
    return out


def shipped_models(extra: list[str] | None = None) -> dict:
    models = {}
    for k in SHIPPED_KERNELS:
        if weights_path(k).exists():
            models[f"focuslitenn-{k}"] = load_model(f"focuslitenn-{k}")
    for path in extra or []:
        models[Path(path).stem] = load_model(path)
    return models


def evaluate(seed: int, n_stacks: int | None = None, extra_models: list[str] | None = None, noise: bool = True,
             protocol: str = "thesis") -> dict:
    """The evaluation table of ``protocol`` (see the module docstring) as a dict:
    {"seed", "protocol", ..., "rows": [{"model", "srcc", ...}]}, rows best SRCC first."""
    if protocol not in PROTOCOLS:
        raise EvalArgumentError(f"protocol {protocol!r}: not one of {', '.join(PROTOCOLS)}")
    n = DEFAULT_STACKS[protocol] if n_stacks is None else int(n_stacks)
    if n < 1:
        raise EvalArgumentError(f"--stacks {n}: needs at least one stack")
    if protocol == "thesis":
        return evaluate_images(seed, n, extra_models, noise)
    return evaluate_patches(seed, n, extra_models, noise)


def within_stack_srcc(pred: np.ndarray, labels: np.ndarray, stack: np.ndarray) -> float:
    """Mean over stacks of the SRCC between ``pred`` and ``labels`` within one stack: how well a
    score orders the planes of one location by |z − z*|, whatever its scale across locations."""
    vals = [srcc(pred[stack == k], labels[stack == k]) for k in np.unique(stack)]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _rows(scores: dict[str, np.ndarray], secs: dict[str, float], labels: np.ndarray, mpx: float,
          stack: np.ndarray | None = None) -> list[dict]:
    rows = []
    for name, pred in scores.items():
        row = {"model": name, **correlation_row(pred, labels, BLURRY_UM), "ms_per_mpx": 1000 * secs[name] / mpx}
        if stack is not None:
            row["within_stack_srcc"] = within_stack_srcc(pred, labels, stack)
        rows.append({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    rows.sort(key=lambda r: -r["srcc"] if np.isfinite(r["srcc"]) else 2)
    return rows


def image_scorers(extra_models: list[str] | None = None) -> dict[str, tuple]:
    """{name: (TileScorer, identity)} of the shipped FocusLiteNN weights, ``extra_models``
    (weights files, named by their stem) and every classical metric, as `finefocus fqa score` runs
    them (identities as `scorer_for` gives them: they name the weights' digest)."""
    names = [f"focuslitenn-{k}" for k in SHIPPED_KERNELS if weights_path(k).exists()]
    out = {n: scorer_for(n)[:2] for n in names}
    for path in extra_models or []:  # `fqa eval` has checked that each one loads
        out[Path(path).stem] = scorer_for(path)[:2]
    for name in METRICS:
        out[name] = scorer_for(name)[:2]
    return out


def image_scores(rgb: np.ndarray, scorers: dict, patch: int = PATCH,
                 stride: int = GRID_STRIDE) -> tuple[dict[str, float], dict[str, float]]:
    """Each TileScorer's score of a whole uint8 (H, W, 3) image, the score `finefocus fqa score`
    gives it, by the same code: `compute_heatmap` over the image, then the mean over its tissue
    patches (``patch`` px at ``stride`` px; NaN when none is tissue); and each scorer's time (s)."""
    from ..slides.array import ArraySlide

    slide = ArraySlide([rgb], min_size=1 << 30)
    out, took = {}, {}
    for name, scorer in scorers.items():
        t = time.perf_counter()
        grid = compute_heatmap(slide, {name: scorer}, patch=patch, stride=stride, prefetch=False)[0][name]
        took[name] = time.perf_counter() - t
        vals = grid[np.isfinite(grid)]
        out[name] = float(vals.mean()) if vals.size else float("nan")
    return out, took


@dataclass
class ImageScores:
    """Scores of every image of the thesis protocol's stacks: ``scores[name]`` (N,) (higher =
    blurrier), ``seconds[name]`` (total scoring time), ``labels`` (N,) |z − z*| µm, ``stack`` (N,)
    the stack of each image, ``megapixels`` scored per model, ``image_px`` the images' side."""
    scores: dict[str, np.ndarray]
    seconds: dict[str, float]
    labels: np.ndarray
    stack: np.ndarray
    megapixels: float
    image_px: int


def scoring_digest() -> str:
    """8 hex digits of the code that samples, masks and scores the images (dataset, tissue mask,
    heatmap, metrics, this module): cached image scores are only reused by the code that made them."""
    import hashlib

    h = hashlib.sha1()
    here = Path(__file__).resolve().parent
    for f in ("dataset.py", "tissue.py", "heatmap.py", "metrics.py", "evaluate.py"):
        h.update((here / f).read_bytes())
    return h.hexdigest()[:8]


def _key(identity: str) -> str:
    import hashlib

    return hashlib.sha1(identity.encode()).hexdigest()[:16]


def image_score_table(seed: int, n_stacks: int, scorers: dict[str, tuple], noise: bool = True,
                      cache: Path | None = EVAL_CACHE, workers: int = 2,
                      image: int = IMAGE_PX) -> ImageScores:
    """Render the thesis protocol's ``n_stacks`` image stacks of ``seed`` (`phantom_image_stacks`)
    and score every image with every scorer ({name: (TileScorer, identity)}) on ``workers``
    threads. Scores are kept per scorer identity in ``cache`` (one file per seed, stacks, noise
    and phantom version), so `fqa eval` and `fusion eval` of one seed render its stacks once and
    a retrained model (a new identity) is scored afresh."""
    from concurrent.futures import ThreadPoolExecutor

    check_evaluation_seed(seed, "focus-quality evaluation")   # engine.phantom.seeds
    path = None
    stored: dict[str, np.ndarray] = {}
    if cache is not None:
        name = f"images-{seed}-{n_stacks}-{image}-{'noisy' if noise else 'clean'}-{phantom_digest()}-{scoring_digest()}.npz"
        path = Path(cache) / name
        try:
            with np.load(path) as f:
                stored = {k: f[k] for k in f.files}
        except FileNotFoundError:
            pass
        except Exception:  # a damaged cache file (e.g. an interrupted write): score afresh
            stored = {}
    if any("s" + _key(ident) not in stored for _, ident in scorers.values()) or "labels" not in stored:
        # The stacks are rendered anyway: score every requested scorer, and keep no score of the
        # old file, so scores and labels always come from one rendering.
        todo = {n: sc for n, (sc, _) in scorers.items()}
        scores = {n: [] for n in todo}
        secs = {n: 0.0 for n in todo}
        labels, stack, px = [], [], 0
        before = torch.get_num_threads()
        torch.set_num_threads(1)  # the workers score on one core each (the setting is process-wide)
        try:
            with ThreadPoolExecutor(max(1, workers)) as pool:
                stacks = phantom_image_stacks(seed, n_stacks, rng_seed=seed + 7, noise=noise, image=image)
                for s_i, (planes, z, zstar) in enumerate(stacks):
                    for (out, took), zi in zip(pool.map(lambda rgb: image_scores(rgb, todo), planes), z):
                        for n in todo:
                            scores[n].append(out[n])
                            secs[n] += took[n]
                        labels.append(abs(float(zi) - zstar))
                        stack.append(s_i)
                    px += planes.shape[0] * planes.shape[1] * planes.shape[2]
        except RuntimeError as exc:  # too little tissue on this seed for the stacks asked for
            raise EvalArgumentError(str(exc)) from None
        finally:
            torch.set_num_threads(before)
        stored = {"labels": np.asarray(labels, np.float64), "stack": np.asarray(stack, np.int32),
                  "megapixels": np.float64(px / 1e6)}
        for n, (_, ident) in scorers.items():
            stored["s" + _key(ident)] = np.asarray(scores[n], np.float64)
            stored["t" + _key(ident)] = np.float64(secs[n])
        if path is not None:
            try:
                import tempfile

                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(suffix=".part.npz", dir=path.parent)
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **stored)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only working folder: evaluate without the cache
    return ImageScores({n: stored["s" + _key(i)] for n, (_, i) in scorers.items()},
                       {n: float(stored["t" + _key(i)]) for n, (_, i) in scorers.items()},
                       stored["labels"], stored["stack"], float(stored["megapixels"]), image)


def evaluate_images(seed: int, n_stacks: int = DEFAULT_STACKS["thesis"], extra_models: list[str] | None = None,
                    noise: bool = True, workers: int = 2) -> dict:
    """The ``thesis`` protocol (module docstring): whole 1024-px images scored as `fqa score`
    scores them."""
    t = image_score_table(seed, n_stacks, image_scorers(extra_models), noise, workers=workers)
    rows = _rows(t.scores, t.seconds, t.labels, t.megapixels, t.stack)
    return {"seed": seed, "protocol": "thesis", "stacks": n_stacks, "images": int(len(t.labels)),
            "image_px": t.image_px, "patch": PATCH, "stride": GRID_STRIDE,
            "blurry_um": BLURRY_UM, "sensor_noise": noise, "rows": rows}


def evaluate_patches(seed: int, n_stacks: int = DEFAULT_STACKS["patch"], extra_models: list[str] | None = None,
                     noise: bool = True) -> dict:
    """The ``patch`` protocol (module docstring): {"seed", "patches", "rows": [{"model", srcc, ...}]}."""
    stacks = evaluation_stacks(seed, n_stacks, noise)
    imgs, labels = _flat(stacks)
    mpx = imgs.shape[0] * imgs.shape[1] * imgs.shape[2] / 1e6
    res = blur_scores(imgs, shipped_models(extra_models))
    rows = _rows({k: v[0] for k, v in res.items()}, {k: v[1] for k, v in res.items()}, labels, mpx)
    return {"seed": seed, "protocol": "patch", "stacks": n_stacks, "patches": int(len(labels)), "blurry_um": BLURRY_UM,
            "sensor_noise": noise, "rows": rows}
