#!/usr/bin/python3
"""int8 against fp32 on the evaluation set: the C engine's word error rate for both, greedy and with the
model's default decoding (its decoding.json: beam 16 over the word list), per telephone condition.

The check of the int8 path's accuracy (`--dtype int8`): WER may grow by at most --max-delta (default
0.3) points absolute over all conditions, in each decoding; exit 1 otherwise. The evaluation set is
synthesized from its seed (held-out TTS voices, no recording of a real person):

  /usr/bin/python3 tools/train/synth.py --split eval --n 300 --kinds digits,phone,menu,mixed --out WORK/eval
  /usr/bin/python3 tools/train/int8_eval.py models/digits --cli build/modelpool [--eval WORK/eval] [--json OUT]

Per condition the table also shows the delta, which on 250-300 words moves by whole words (0.3-0.4
points each); the pass/fail line uses all conditions' words together (~1,600 per condition).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONDS = common.EVAL_CONDS
DECODINGS = {"greedy": ["--beam", "0"], "default": []}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--cli", required=True)
    ap.add_argument("--eval", default=os.path.join(common.WORK, "eval"))
    ap.add_argument("--limit", type=int, default=0, help="utterances per condition (0 = all)")
    ap.add_argument("--max-delta", type=float, default=0.3, help="allowed int8 - fp32 WER, points")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    with open(os.path.join(a.eval, "index.jsonl")) as f:
        rows = [json.loads(l) for l in f]
    maps, res = {}, {}
    tot = {(d, t): [0, 0] for d in DECODINGS for t in ("fp32", "int8")}
    for cond in CONDS:
        rc = [r for r in rows if r["cond"] == cond]
        rc = rc[:a.limit] if a.limit else rc
        if not rc:
            continue
        line = []
        for dname, dopts in DECODINGS.items():
            wer = {}
            for dtype in ("fp32", "int8"):
                hyps = common.engine_transcripts(a.cli, a.model_dir, a.eval, rc, [*dopts, "--dtype", dtype], maps)
                e = n = 0
                for r, h in zip(rc, hyps):
                    ee, nn = common.wer_counts(r["text"], " ".join(h))
                    e, n = e + ee, n + nn
                t = tot[(dname, dtype)]
                t[0], t[1] = t[0] + e, t[1] + n
                wer[dtype] = 100.0 * e / max(1, n)
            res.setdefault(cond, {})[dname] = dict(words=n, fp32=round(wer["fp32"], 2), int8=round(wer["int8"], 2))
            line.append("%s fp32 %6.2f%% int8 %6.2f%% (%+.2f)" % (dname, wer["fp32"], wer["int8"],
                                                                 wer["int8"] - wer["fp32"]))
        print("%-9s %4d clips  %s" % (cond, len(rc), "   ".join(line)), flush=True)
    ok = True
    for dname in DECODINGS:
        (ef, nf), (ei, ni) = tot[(dname, "fp32")], tot[(dname, "int8")]
        wf, wi = 100.0 * ef / max(1, nf), 100.0 * ei / max(1, ni)
        res.setdefault("all", {})[dname] = dict(words=nf, fp32=round(wf, 3), int8=round(wi, 3))
        passed = wi - wf <= a.max_delta
        ok = ok and passed
        print("all       %-7s fp32 %.3f%% (%d / %d words)  int8 %.3f%% (%d)  delta %+.3f points  %s" %
              (dname, wf, ef, nf, wi, ei, wi - wf, "ok" if passed else "FAIL (max %+.2f)" % a.max_delta))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
