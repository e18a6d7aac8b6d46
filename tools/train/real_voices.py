#!/usr/bin/python3
"""Real human voices for training: Debian's Asterisk telephone prompts in Spanish, French, Italian, Russian.

These are studio/IVR recordings of real speakers (8 kHz), shipped in Debian main with their transcripts
(core-sounds-xx.txt.gz). No English recording of a real person is used anywhere: the model's English
comes only from TTS (synth.py); these teach the acoustic layers what human voices, breathing, prosody
and microphones sound like. The text is mapped onto the model's 26-letter + apostrophe vocabulary:
accents folded (NFKD, combining marks dropped), Cyrillic transliterated, other characters become word breaks.

Speakers (one per recording set; packages fetched with `apt-get download` and unpacked with `dpkg-deb -x`
into WORK/debs, or $MP_REAL_DEBS, so conflicting packages never need installing):
  es_MX_f_Allison  asterisk-core-sounds-es-wav     all transcribed prompts   HELD OUT (evaluation only)
  fr_CA_f_June     asterisk-core-sounds-fr-wav     all transcribed prompts
  it_IT_m_Carlo    asterisk-core-sounds-it-wav     all transcribed prompts
  ru_RU_f_Ivrvoice asterisk-core-sounds-ru-wav     all transcribed prompts
  it_IT_f_Menardi  asterisk-prompt-it-menardi-wav  digits/ and letters/ only
  es_CO            asterisk-prompt-es-co (GSM)     digits/ only
  fr_armelle       asterisk-prompt-fr-armelle (GSM) digits/ and letters/ only
The three older prompt sets have no transcript of their own; their digits/ and letters/ files are named by
what they say, so the same-language core transcript gives their words. Their other prompts may be worded
differently from the core set and are not used. Single-letter transcripts ("letters/a: a") are dropped:
a letter's spoken name is not its spelling.

Output (WORK/real by default): the training part in synth.py's corpus format (shards + index.jsonl), each
recording --copies times through synth.py's voice-manipulation and telephone-channel chain with a different
seed; and WORK/real-heldout/index.jsonl listing the held-out speaker's original files with their
normalized transcripts (evaluated by real_cer.py).

  /usr/bin/python3 tools/train/real_voices.py --copies 3 --jobs 2
"""
import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import unicodedata
from multiprocessing import Pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import synth  # noqa: E402

SOUNDS = "usr/share/asterisk/sounds"
# (speaker, package, directory under SOUNDS, sex, transcript language, which files)
SPEAKERS = [
    ("es_MX_f_Allison", "asterisk-core-sounds-es-wav", "es_MX_f_Allison", "f", "es", "all"),
    ("fr_CA_f_June", "asterisk-core-sounds-fr-wav", "fr_CA_f_June", "f", "fr", "all"),
    ("it_IT_m_Carlo", "asterisk-core-sounds-it-wav", "it_IT_m_Carlo", "m", "it", "all"),
    ("ru_RU_f_Ivrvoice", "asterisk-core-sounds-ru-wav", "ru_RU_f_IvrvoiceRU", "f", "ru", "all"),
    ("it_IT_f_Menardi", "asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi", "f", "it", "digits+letters"),
    ("es_CO", "asterisk-prompt-es-co", "es", "?", "es", "digits"),
    ("fr_armelle", "asterisk-prompt-fr-armelle", "fr", "f", "fr", "digits+letters"),
]
HELDOUT = "es_MX_f_Allison"
TRANSCRIPTS = {l: "asterisk-core-sounds-%s" % l for l in ("es", "fr", "it", "ru")}

# Russian -> Latin letters (a simple scientific-style transliteration; soft/hard signs dropped).
CYR = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
               ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p", "r",
                "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "iu", "ia"]))


def normalize(text):
    """Transcript -> words of the model's alphabet (upper case A-Z and '), or None if unusable."""
    if any(ch.isdigit() for ch in text) or "[" in text or "(" in text:
        return None                    # numerals, sound effects, stage directions: no reliable spelling
    t = "".join(CYR.get(ch, ch) for ch in text.lower())
    t = unicodedata.normalize("NFKD", t)
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = t.replace("\u2019", "'").replace("`", "'")
    out = "".join(ch.upper() if ("a" <= ch <= "z" or ch == "'") else " " for ch in t)
    words = [w.strip("'") for w in out.split()]
    words = [w for w in words if w]
    return " ".join(words) if words else None


def fetch(work):
    """apt-get download + dpkg-deb -x every package into work/debs/x (cached)."""
    d = os.environ.get("MP_REAL_DEBS") or os.path.join(work, "debs")
    x = os.path.join(d, "x")
    stamp = os.path.join(d, "done")
    if os.path.exists(stamp):
        return x
    os.makedirs(x, exist_ok=True)
    pkgs = sorted({s[1] for s in SPEAKERS} | set(TRANSCRIPTS.values()))
    subprocess.run(["apt-get", "download"] + pkgs, cwd=d, check=True, stdout=subprocess.DEVNULL)
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".deb"):
            subprocess.run(["dpkg-deb", "-x", os.path.join(d, fn), x], check=True)
    open(stamp, "w").close()
    return x


def transcript(x, lang):
    """core-sounds-LANG.txt.gz -> {name: normalized text}; names given twice with different text are dropped."""
    p = os.path.join(x, "usr/share/doc", TRANSCRIPTS[lang], "core-sounds-%s.txt.gz" % lang)
    seen, bad = {}, set()
    with gzip.open(p, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip().lstrip("\ufeff")
            if not line or line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            name = name.strip()
            if name in seen and seen[name] != text.strip():
                bad.add(name)
            seen[name] = text.strip()
    return {k: v for k, v in seen.items() if k not in bad}


def speaker_items(x, spk):
    """[(path, text)] for one speaker."""
    name, _pkg, sub, _sex, lang, which = spk
    tr = transcript(x, lang)
    root = os.path.join(x, SOUNDS, sub)
    items = []
    for key, raw in sorted(tr.items()):
        top = key.split("/")[0] if "/" in key else ""
        if which != "all" and top not in which.split("+"):
            continue
        if top == "letters" and len(raw.strip(" .")) <= 1:
            continue
        text = normalize(raw)
        if not text:
            continue
        for ext in (".wav", ".gsm"):
            p = os.path.join(root, key + ext)
            if os.path.exists(p):
                items.append((p, text))
                break
    return items


def do_shard(args):
    shard, jobs, seed, out, levers = args
    meta, off = [], 0
    with open(os.path.join(out, "shard-%03d.raw" % shard), "wb") as fo:
        for i, (spk, sex, path, text, copy) in jobs:
            rng = random.Random("%d-real-%d" % (seed, i))
            wb = False                          # the sources are 8 kHz: there is no wideband version
            codec = rng.choices(synth.CODECS, [0.2, 0.3, 0.15, 0.1, 0.25])[0]
            st = {}
            try:
                y = synth.channel(path, rng, st, [], wb, codec, levers)
            except RuntimeError as e:
                print("skipped %s: %s" % (path, e), file=sys.stderr)
                continue
            fo.write(y.tobytes())
            meta.append(dict(id=i, cond="train", shard=shard, off=off, n=len(y), text=text.lower(),
                             engine="real", voice=spk, sex=sex, wideband=wb, copy=copy,
                             src=path.split(SOUNDS + "/", 1)[-1], **st))
            off += len(y)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=3, help="augmented copies of each training recording")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default=os.path.join(common.WORK, "real"))
    ap.add_argument("--heldout-out", default=os.path.join(common.WORK, "real-heldout"))
    ap.add_argument("--levers", action="store_true", help="also synth.py's second set of channel levers")
    ap.add_argument("--limit", type=int, default=0, help="recordings per speaker (0 = all; for smoke tests)")
    a = ap.parse_args()
    x = fetch(common.WORK)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.heldout_out, exist_ok=True)
    jobs, stats = [], {}
    for spk in SPEAKERS:
        items = speaker_items(x, spk)
        if a.limit:
            items = items[:a.limit]
        stats[spk[0]] = len(items)
        if spk[0] == HELDOUT:
            with open(os.path.join(a.heldout_out, "index.jsonl"), "w") as f:
                for p, t in items:
                    f.write(json.dumps(dict(path=p, text=t.lower(), voice=spk[0], sex=spk[3])) + "\n")
            continue
        for p, t in items:
            for c in range(a.copies):
                jobs.append((spk[0], spk[3], p, t, c))
    print("recordings per speaker: %s (held out: %s)" % (stats, HELDOUT), flush=True)
    numbered = list(enumerate(jobs))
    random.Random(a.seed).shuffle(numbered)
    per = 200
    shards = [(s, numbered[k:k + per], a.seed, a.out, a.levers) for s, k in enumerate(range(0, len(numbered), per))]
    rows = []
    with Pool(a.jobs) as pool:
        for meta in pool.imap_unordered(do_shard, shards):
            rows += meta
    rows.sort(key=lambda r: r["id"])
    with open(os.path.join(a.out, "index.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    hours = sum(r["n"] for r in rows) / synth.SR / 3600
    with open(os.path.join(a.out, "settings.json"), "w") as f:
        json.dump(dict(copies=a.copies, seed=a.seed, levers=a.levers, heldout=HELDOUT, recordings=stats, clips=len(rows),
                       hours=round(hours, 3)), f, indent=1)
    print("real: %d clips, %.2f h in %s; held-out list in %s" % (len(rows), hours, a.out, a.heldout_out))


if __name__ == "__main__":
    main()
