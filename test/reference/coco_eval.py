#!/usr/bin/env python3
"""Runs the COCO caption evaluation toolkit (pycocoevalcap 1.2) on captions given as JSON on stdin and prints
its results as JSON on stdout, for the TypeScript cross-check tests and the eval benchmark. Test tooling only.

Input:  {"gts": {"<id>": ["caption", ...]}, "res": {"<id>": ["caption"]}, "metrics": ["bleu", "rouge", "cider"]}
        or {"tokenize": {"<id>": ["caption", ...]}} to get only the PTBTokenizer output.
Output: {"tokenized": {...}} or {"gts": ..., "res": ..., "bleu": [b1..b4], "bleu_per_image": {"<id>": [..]},
         "rouge": x, "rouge_per_image": {...}, "cider": x, "cider_per_image": {...}, "seconds": {...}}
"""
import contextlib
import json
import sys
import time

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer


def as_coco(captions):
    return {k: [{"caption": c} for c in v] for k, v in captions.items()}


def main():
    request = json.load(sys.stdin)
    out = {}
    # The toolkit prints progress on stdout; keep stdout for the JSON answer.
    with contextlib.redirect_stdout(sys.stderr):
        if "tokenize" in request:
            out["tokenized"] = PTBTokenizer().tokenize(as_coco(request["tokenize"]))
        else:
            metrics = request.get("metrics", ["bleu", "rouge", "cider"])
            seconds = {}
            start = time.perf_counter()
            gts = PTBTokenizer().tokenize(as_coco(request["gts"]))
            res = PTBTokenizer().tokenize(as_coco(request["res"]))
            seconds["tokenize"] = time.perf_counter() - start
            out["gts"], out["res"] = gts, res
            ids = list(gts.keys())
            for name, scorer in (("bleu", Bleu(4)), ("rouge", Rouge()), ("cider", Cider())):
                if name not in metrics:
                    continue
                start = time.perf_counter()
                score, per_image = scorer.compute_score(gts, res)
                seconds[name] = time.perf_counter() - start
                if name == "bleu":
                    out["bleu"] = [float(s) for s in score]
                    out["bleu_per_image"] = {i: [float(per_image[k][j]) for k in range(4)] for j, i in enumerate(ids)}
                else:
                    out[name] = float(score)
                    out[name + "_per_image"] = {i: float(per_image[j]) for j, i in enumerate(ids)}
            out["seconds"] = seconds
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
