#!/usr/bin/python3
"""Digits added or lost around everyday words: the "carrier phrase + digits" test.

Utterances such as "my number is four one five ... thank you" read by held-out TTS voices
(`synth.py --split eval --kinds carrier`), through one telephone condition, are transcribed by the C engine
(`modelpool transcribe`, with the model's default decoding and any extra options given). Only the digit
words (zero..nine, oh) of reference and hypothesis are compared: aligned by edit distance, an inserted digit
is "added", a deleted one "lost", a replaced one "substituted". The target is added + lost <= 0.1 per utterance.

  /usr/bin/python3 tools/train/carrier_eval.py models/digits --cli build/modelpool [--cond gsm] [--limit N] [--hyps OUT.jsonl] [-- --beam 0]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DIGITS = set(common.DIGIT_WORDS + ["oh"])


def align_counts(ref, hyp):
    """(added, lost, substituted) of hyp against ref, by Levenshtein alignment."""
    n, m = len(ref), len(hyp)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    add = lost = sub = 0
    i, j = n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            sub += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif j and d[i][j] == d[i][j - 1] + 1:
            add, j = add + 1, j - 1
        else:
            lost, i = lost + 1, i - 1
    return add, lost, sub


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--cli", required=True)
    ap.add_argument("--eval", default=os.path.join(common.WORK, "eval-carrier"))
    ap.add_argument("--cond", default="gsm")
    ap.add_argument("--json", default=None)
    ap.add_argument("--hyps", default=None, help="write per-clip reference, transcript and counts (jsonl) here")
    ap.add_argument("--limit", type=int, default=0, help="utterances (0 = all)")
    a, extra = ap.parse_known_args()      # everything else (after --) goes to `modelpool transcribe`
    a.extra = [x for x in extra if x != "--"]
    with open(os.path.join(a.eval, "index.jsonl")) as f:
        rows = [json.loads(l) for l in f]
    rows = [r for r in rows if r["cond"] == a.cond]
    if a.limit:
        rows = rows[:a.limit]
    hyps = common.engine_transcripts(a.cli, a.model_dir, a.eval, rows, a.extra)
    tot = [0, 0, 0]
    nd = 0
    hy = open(a.hyps, "w") if a.hyps else None
    for r, words in zip(rows, hyps):
        ref = [w for w in r["text"].split() if w in DIGITS]
        hyp = [w for w in words if w in DIGITS]
        c = align_counts(ref, hyp)
        if hy:
            hy.write(json.dumps(dict(id=r["id"], voice=r["voice"], ref=r["text"], hyp=" ".join(words),
                                     added=c[0], lost=c[1], substituted=c[2])) + "\n")
        tot = [x + y for x, y in zip(tot, c)]
        nd += len(ref)
    if hy:
        hy.close()
    n = max(1, len(rows))
    res = dict(model=a.model_dir, options=a.extra, cond=a.cond, utterances=len(rows), ref_digits=nd,
               added_per_utt=round(tot[0] / n, 3), lost_per_utt=round(tot[1] / n, 3),
               substituted_per_utt=round(tot[2] / n, 3), added_or_lost_per_utt=round((tot[0] + tot[1]) / n, 3))
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
