#!/usr/bin/python3
"""ref_decode.py - an independent, deliberately brute-force reference for the beam decoder's
lexicon and n-gram LM scoring (tests/test-decode.c, case ref_python, runs it and compares).

For each case it enumerates every CTC alignment (V^T paths), sums their probabilities per
labeling, and scores each labeling as

    ln P_ctc(labeling) + sum over words [alpha * ln P_lm(word | context) + beta]
                       + alpha * ln P_lm(</s> | context)

with P_lm from its own ARPA reader using the textbook backoff recursion
P(w | h) = p(h w) if listed, else bw(h) + P(w | h minus its oldest word); the context starts at <s>;
a word missing from the LM is <unk> (log10 -100 if the file lacks <unk>) plus unk (log10), as
pyctcdecode does with kenlm (LanguageModel.score). Words are compared lower-cased. With a lexicon,
consecutive delimiters (runs with blanks between) are one (they end one word), and
the delimiter is optional between words: each delimiter-free stretch of a labeling is read as any
split of it (at token boundaries) into one or more lexicon words, and the labeling scores as its
best split; labelings with no such split are dropped. Text follows Wav2Vec2CTCTokenizer: tokens
joined, the delimiter as a space, stripped; a split without a delimiter adds one space. Texts
that tie with the best score (splits of one labeling, without an LM) are all printed, joined by
" / ", since any of them is a right answer.

Input: a JSON file holding a list of cases
    {"vocab": [...], "pad": 0, "delim": 1, "logits": [[...] * V] * T,
     "lexicon": [...] or null, "arpa": "path" or null, "alpha": a, "beta": b, "unk": u}
Output: one line per case, "text<TAB>score".
Usage: ref_decode.py CASES.json
"""
import itertools
import json
import math
import sys


def read_arpa(path):
    """Return ({tuple(words): (log10 prob, log10 backoff)}, order)."""
    grams, order, section = {}, 0, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("ngram "):
                order = max(order, int(line[6:].split("=")[0]))
                continue
            if line.startswith("\\"):
                section = int(line[1]) if line[1].isdigit() else None
                continue
            if section is None:
                continue
            parts = line.split()
            words = tuple(w.lower() for w in parts[1:1 + section])
            bo = float(parts[1 + section]) if len(parts) > 1 + section else 0.0
            grams.setdefault(words, (float(parts[0]), bo))
    if ("<unk>",) not in grams:
        grams[("<unk>",)] = (-100.0, 0.0)
    return grams, order


def lm_log10(grams, hist, w):
    """Backoff recursion; hist is a tuple of (already <unk>-mapped) words, oldest first."""
    if hist + (w,) in grams:
        return grams[hist + (w,)][0]
    if not hist:
        return grams[(w,)][0]
    bo = grams[hist][1] if hist in grams else 0.0
    return bo + lm_log10(grams, hist[1:], w)


def lm_terms(grams, order, words, alpha, beta, unk):
    ln10 = math.log(10.0)
    hist = ("<s>",)
    total = 0.0
    for w in words:
        w = w.lower()
        known = (w,) in grams
        lw = w if known else "<unk>"
        s = lm_log10(grams, hist[max(0, len(hist) - (order - 1)):], lw) + (0.0 if known else unk)
        total += alpha * s * ln10 + beta
        hist = hist + (lw,)
    total += alpha * lm_log10(grams, hist[max(0, len(hist) - (order - 1)):], "</s>") * ln10
    return total


def decode_case(c):
    vocab, pad, delim = c["vocab"], c["pad"], c["delim"]
    logits = c["logits"]
    V, T = len(vocab), len(logits)
    logp = []
    for row in logits:
        m = max(row)
        z = m + math.log(sum(math.exp(x - m) for x in row))
        logp.append([x - z for x in row])
    # every alignment -> its labeling (repeats merged, then blanks dropped)
    prob = {}
    for path in itertools.product(range(V), repeat=T):
        lab, prev = [], None
        for v in path:
            if v != prev and v != pad:
                lab.append(v)
            prev = v
        p = math.exp(sum(logp[t][v] for t, v in enumerate(path)))
        if c.get("lexicon") is not None:  # a word list: delimiter runs after delimiter runs end no word
            lab = [v for i, v in enumerate(lab) if not (v == delim and i > 0 and lab[i - 1] == delim)]
        prob[tuple(lab)] = prob.get(tuple(lab), 0.0) + p
    lex = None if c.get("lexicon") is None else {w.lower() for w in c["lexicon"]}
    grams, order = (None, 0) if c.get("arpa") is None else read_arpa(c["arpa"])
    best = None  # (texts, score)
    for lab, p in prob.items():
        for cuts in splits(lab, vocab, delim, lex):
            words, cur = [], ""
            for i, v in enumerate(lab):
                if v == delim or i in cuts:
                    if cur:
                        words.append(cur)
                    cur = ""
                if v != delim:
                    cur += vocab[v]
            if cur:
                words.append(cur)
            score = math.log(p)
            if grams is not None:
                score += lm_terms(grams, order, words, c["alpha"], c["beta"], c["unk"])
            text = "".join((" " if i in cuts else "") + (" " if v == delim else vocab[v])
                           for i, v in enumerate(lab)).strip()
            if best is None or score > best[1] + 1e-9:
                best = ([text], score)
            elif score >= best[1] - 1e-9 and text not in best[0]:
                best[0].append(text)
    return " / ".join(best[0]), best[1]


def splits(lab, vocab, delim, lex):
    """Every set of positions i where a word starts at lab[i] without a delimiter before it, such
    that all words are in lex; without a lexicon just the empty set."""
    if lex is None:
        return [frozenset()]
    # stretches between delimiters, as (start, end) index ranges
    spans, start = [], 0
    for i, v in enumerate(lab + (delim,)):
        if v == delim:
            if i > start:
                spans.append((start, i))
            start = i + 1
    out = [frozenset()]
    for a, b in spans:
        ways = []  # cut sets of lab[a:b] into lexicon words

        def walk(i, cuts):
            for j in range(i + 1, b + 1):
                if "".join(vocab[v] for v in lab[i:j]).lower() in lex:
                    if j == b:
                        ways.append(cuts)
                    else:
                        walk(j, cuts | {j})

        walk(a, frozenset())
        out = [x | y for x in out for y in ways]
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    for c in cases:
        text, score = decode_case(c)
        print("%s\t%.9f" % (text, score))


if __name__ == "__main__":
    main()
