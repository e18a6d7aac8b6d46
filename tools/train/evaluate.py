#!/usr/bin/python3
"""Word error rate of an exported HF model directory on the held-out-voice evaluation set.

For each condition (clean16k = wideband TTS, none = 8 kHz band-limited PCM, gsm, ulaw, alaw,
amr = AMR-NB 12.2 kbit/s) it reports greedy CTC WER and lexicon-constrained WER. The constrained
decoder here is an interim Python Viterbi over a word loop of the lexicon (best single CTC path
that spells a sequence of lexicon words, optional '|' and blanks between words); the C beam
decoder (src/decode/beam.c) supersedes it.

  /usr/bin/python3 tools/train/evaluate.py models/digits [--eval DIR] [--json OUT] [--limit N]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402
from common import wer_counts  # noqa: E402
from train import Corpus  # noqa: E402

CONDS = common.EVAL_CONDS


class LexiconViterbi:
    """CTC word-loop graph. States: 0 = gap blank, 1 = '|' delimiter, then per word its letters
    with a blank state after each letter but the last (required between equal letters, e.g. the
    'ee' of three, optional otherwise). Max-product (Viterbi) over log-probs [T, V]."""

    def __init__(self, words):
        self.words = words
        tok, word_of, edges = [common.BLANK, common.DELIM], [-1, -1], []
        starts, ends = [], []
        for wi, w in enumerate(words):
            ids = [common.CHAR_ID[c] for c in w.upper()]
            prev_letter = None
            for j, c in enumerate(ids):
                s = len(tok)
                tok.append(c)
                word_of.append(wi)
                if j == 0:
                    starts.append(s)
                else:
                    edges.append((prev_letter, s)) if ids[j - 1] != c else None
                    edges.append((prev_letter + 1, s))          # via the blank after the previous letter
                edges.append((s, s))
                if j < len(ids) - 1:
                    tok.append(common.BLANK)
                    word_of.append(wi)
                    edges.append((s, s + 1))
                    edges.append((s + 1, s + 1))
                prev_letter = s
            ends.append(prev_letter)
        for g in (0, 1):
            edges.append((g, g))
            edges.append((g, 1 - g))
            for s in starts:
                edges.append((g, s))
        for e in ends:
            edges.append((e, 0))
            edges.append((e, 1))
            for s in starts:
                if tok[s] != tok[e]:
                    edges.append((e, s))
        self.tok = np.array(tok)
        self.word_of = np.array(word_of)
        self.starts = set(starts)
        self.init = np.array([0, 1] + starts)
        self.final = np.array([0, 1] + ends)
        e = np.array(sorted(set(edges)))
        self.src, self.dst = e[:, 0], e[:, 1]
        self.n = len(tok)

    def decode(self, logp):
        T = logp.shape[0]
        S = self.n
        score = np.full(S, -np.inf)
        score[self.init] = logp[0, self.tok[self.init]]
        back = np.zeros((T, S), dtype=np.int32)
        order = np.argsort(self.dst, kind="stable")
        src, dst = self.src[order], self.dst[order]
        # Group edges by destination once: max over incoming edges per state.
        bounds = np.r_[0, np.nonzero(np.diff(dst))[0] + 1]
        dst_u = dst[bounds]
        for t in range(1, T):
            cand = score[src]
            best_idx = np.maximum.reduceat(cand, bounds)
            new = np.full(S, -np.inf)
            new[dst_u] = best_idx
            # back pointers: the source with the max score for each destination
            is_max = cand == np.repeat(best_idx, np.diff(np.r_[bounds, len(cand)]))
            first = np.full(S, -1)
            idx = np.nonzero(is_max)[0][::-1]
            first[dst[idx]] = src[idx]
            back[t] = first
            score = new + logp[t, self.tok]
        fin = self.final[np.argmax(score[self.final])]
        path = [fin]
        for t in range(T - 1, 0, -1):
            path.append(back[t, path[-1]])
        path.reverse()
        out, prev = [], -1
        for s in path:
            if s in self.starts and s != prev:
                out.append(self.words[self.word_of[s]])
            prev = s
        return " ".join(out)


def engine_errors(a, corpus, rows):
    """Word errors of the C engine's lexicon beam search over rows."""
    hyps = common.engine_transcripts(a.cli, a.model_dir, corpus.d, rows, ["--beam", str(a.beam)], corpus.maps)
    return sum(wer_counts(r["text"], " ".join(h))[0] for r, h in zip(rows, hyps))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--eval", default=os.path.join(common.WORK, "eval"))
    ap.add_argument("--json", default=None, help="write per-condition results here")
    ap.add_argument("--hyps", default=None, help="write per-clip transcripts (jsonl) here")
    ap.add_argument("--limit", type=int, default=0, help="utterances per condition (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cli", default=None,
                    help="also score the C engine: `CLI transcribe --beam B` (lexicon.txt of the model dir)")
    ap.add_argument("--beam", type=int, default=8)
    a = ap.parse_args()
    torch = common.setup_torch(a.threads)
    import export_hf
    model = export_hf.load_hf_dir(a.model_dir)
    with open(os.path.join(a.model_dir, "lexicon.txt")) as f:
        lex = [w.strip() for w in f if w.strip()]
    vit = LexiconViterbi(lex)
    corpus = Corpus(a.eval, max_s=1e9)
    res = {}
    hy = open(a.hyps, "w") if a.hyps else None
    t0 = time.time()
    for cond in CONDS:
        rows = [r for r in corpus.rows if r["cond"] == cond]
        if a.limit:
            rows = rows[:a.limit]
        eg = ec = n = sent_ok = 0
        by_sex = {}
        for r in rows:
            with torch.no_grad():
                logits, _ = model(torch.from_numpy(corpus.audio(r))[None])
            lp = torch.log_softmax(logits[0], -1).numpy()
            g = common.greedy_decode(lp.argmax(-1).tolist())
            c = vit.decode(lp)
            a1, nn = wer_counts(r["text"], g)
            a2, _ = wer_counts(r["text"], c)
            eg, ec, n = eg + a1, ec + a2, n + nn
            sent_ok += (c == r["text"])
            s = by_sex.setdefault(r["sex"], [0, 0])
            s[0] += a1
            s[1] += nn
            if hy:
                hy.write(json.dumps(dict(id=r["id"], cond=cond, voice=r["voice"], ref=r["text"], greedy=g,
                                         constrained=c)) + "\n")
        if a.cli:
            ee = engine_errors(a, corpus, rows)
            res.setdefault("engine_beam", {})[cond] = round(100.0 * ee / max(1, n), 2)
            print("%-9s engine --beam %d WER %.2f%%" % (cond, a.beam, 100.0 * ee / max(1, n)))
        res[cond] = dict(clips=len(rows), words=n, wer_greedy=round(100.0 * eg / max(1, n), 2),
                         wer_constrained=round(100.0 * ec / max(1, n), 2),
                         utt_acc_constrained=round(100.0 * sent_ok / max(1, len(rows)), 2),
                         wer_greedy_by_sex={k: round(100.0 * v[0] / max(1, v[1]), 2) for k, v in by_sex.items()})
        print("%-9s clips %4d words %5d  WER greedy %6.2f%%  constrained %6.2f%%  (greedy f %s / m %s)" %
              (cond, len(rows), n, res[cond]["wer_greedy"], res[cond]["wer_constrained"],
               res[cond]["wer_greedy_by_sex"].get("f"), res[cond]["wer_greedy_by_sex"].get("m")), flush=True)
    print("%.0f s" % (time.time() - t0))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
