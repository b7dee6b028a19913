"""`finefocus fqa eval`: FocusLiteNN and the classical metrics against phantom ground truth."""
from __future__ import annotations

import argparse
import json

from ..cli import UserError
from ..phantom.seeds import SeedPolicyError
from .evaluate import DEFAULT_STACKS, PROTOCOLS, EvalArgumentError, evaluate
from .focuslitenn import load_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate focus models on phantom z-stacks (JSON)",
                       description="Render phantom focal stacks for --seed and print SRCC, PLCC, KRCC, "
                                   "ROC-AUC, PR-AUC and ms per megapixel for every model and metric. "
                                   "--protocol thesis (default) scores whole 1024-px images as the thesis "
                                   "scores FocusPath (mean of 235-px patches at stride 128 over tissue, "
                                   "as `fqa score`); --protocol patch scores single 235-px patches.")
    p.add_argument("--seed", type=int, required=True, help="phantom seed (not a training seed)")
    p.add_argument("--stacks", type=int, default=None,
                   help="number of focal stacks, 13 planes each (default: "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_STACKS.items()) + ")")
    p.add_argument("--protocol", choices=PROTOCOLS, default="thesis",
                   help="thesis: whole 1024-px images (default); patch: single 235-px patches")
    p.add_argument("--model", action="append", default=[], help="extra weights file(s) to evaluate")
    p.add_argument("--clean", action="store_true", help="noise-free planes (default: with the phantom's sensor noise)")
    p.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    p.set_defaults(handler=_eval)


def _eval(args) -> int:
    for path in args.model:  # every extra model loads, before any stack is rendered
        try:
            load_model(path)
        except FileNotFoundError:
            raise UserError(f"{path}: no such weights file") from None
        except Exception as exc:  # not FocusLiteNN weights
            raise UserError(f"{path}: cannot load FocusLiteNN weights ({exc.__class__.__name__})") from None
    try:
        result = evaluate(args.seed, args.stacks, args.model, noise=not args.clean, protocol=args.protocol)
    except (EvalArgumentError, SeedPolicyError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    what = (f"{result['images']} images of {result['image_px']} px" if result["protocol"] == "thesis"
            else f"{result['patches']} patches")
    print(f"phantom seed {result['seed']} ({result['protocol']} protocol): {what}, "
          f"blurry = |z − z*| ≥ {result['blurry_um']} µm")
    print(f"{'model':28s} {'SRCC':>7s} {'PLCC':>7s} {'KRCC':>7s} {'ROC':>7s} {'PR':>7s} {'ms/MPx':>8s}")
    for r in result["rows"]:
        print(f"{r['model']:28s} {r['srcc']:7.4f} {r['plcc']:7.4f} {r['krcc']:7.4f} {r['roc_auc']:7.4f} "
              f"{r['pr_auc']:7.4f} {r['ms_per_mpx']:8.1f}")
    return 0
