#!/usr/bin/python3
"""gen_arpa.py - write a synthetic word-level ARPA n-gram file of about a given size, to measure
the LM loader's time and memory (mp_lm_load_arpa) on realistic volumes.

Words are random lower-case strings; the n-grams of each order are distinct by construction
(the i-th n-gram is i mapped through an affine bijection of [0, V^n) and read as n base-V
digits), so no set of millions of tuples is kept in memory. Probabilities are random; the file
is well-formed ARPA (every word of a higher n-gram is a 1-gram), not a trained model.

Usage: gen_arpa.py OUT.arpa [--size-mb 100] [--order 4] [--vocab 50000] [--seed 1]
"""
import argparse
import math
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size-mb", type=float, default=100.0)
    ap.add_argument("--order", type=int, default=4, choices=range(1, 6))
    ap.add_argument("--vocab", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    letters = "abcdefghijklmnopqrstuvwxyz'"
    words = set()
    while len(words) < a.vocab:
        words.add("".join(rnd.choice(letters[:26]) for _ in range(rnd.randint(2, 10))))
    words = sorted(words)
    V = len(words)
    # bytes per line ~ prob (7) + n * (avg word 6 + 1) + backoff (7)
    budget = a.size_mb * 1e6 - V * 22
    per_line = {n: 7 + 7 * n + (8 if n < a.order else 0) for n in range(2, a.order + 1)}
    counts = {1: V + 3}
    for n in range(2, a.order + 1):
        counts[n] = max(1, min(int(budget / (a.order - 1) / per_line[n]), V ** n))
    with open(a.out, "w", encoding="utf-8", buffering=1 << 20) as f:
        f.write("\\data\\\n")
        for n in range(1, a.order + 1):
            f.write("ngram %d=%d\n" % (n, counts[n]))
        f.write("\n\\1-grams:\n")
        bo = "\t%.4f" if a.order > 1 else ""
        f.write(("-1.5000\t<unk>" + bo + "\n") % ((0.0,) if bo else ()))
        f.write(("-99\t<s>" + bo + "\n") % ((-0.3,) if bo else ()))
        f.write("-1.2000\t</s>\n")
        for w in words:
            f.write(("%.4f\t%s" + bo + "\n") % ((-2 - 3 * rnd.random(), w) + ((-rnd.random(),) if bo else ())))
        for n in range(2, a.order + 1):
            f.write("\n\\%d-grams:\n" % n)
            space = V ** n
            mul = rnd.randrange(1, space)
            while math.gcd(mul, space) != 1:  # coprime: i -> i * mul + add is a bijection mod space
                mul += 1
            add = rnd.randrange(space)
            last = n == a.order
            lines = []
            for i in range(counts[n]):
                x = (i * mul + add) % space
                ws = []
                for _ in range(n):
                    x, d = divmod(x, V)
                    ws.append(words[d])
                if last:
                    lines.append("%.4f\t%s\n" % (-0.1 - 2 * rnd.random(), " ".join(ws)))
                else:
                    lines.append("%.4f\t%s\t%.4f\n" % (-0.1 - 2 * rnd.random(), " ".join(ws), -rnd.random()))
                if len(lines) == 100000:
                    f.write("".join(lines))
                    lines = []
            f.write("".join(lines))
        f.write("\n\\end\\\n")


if __name__ == "__main__":
    main()
