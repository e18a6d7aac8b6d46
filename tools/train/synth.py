#!/usr/bin/python3
"""Synthesize a telephone-speech corpus of digit strings and phone-menu words.

Text -> TTS (espeak-ng / flite / festival, Debian main) -> voice variation (sox tempo, pitch,
speed) -> telephone channel (300-3400 Hz at 8 kHz, level, noise, silence) -> codec round trip
(GSM 06.10, mu-law, A-law, AMR-NB or none) -> 16 kHz int16, the rate the model consumes (the
engine resamples 8 kHz input to 16 kHz with soxr; sox `rate -h` here is the same class of
resampler).

Output, in OUT (default /var/tmp/modelpool-train/<split>): shard-NN.raw (int16 16 kHz, utterances
back to back) and index.jsonl (one line per utterance: shard, offset, n, text, voice, settings).
Every random choice derives from (--seed, utterance index), so a re-run reproduces the corpus.

  /usr/bin/python3 tools/train/synth.py --split train --n 20000 --jobs 2
  /usr/bin/python3 tools/train/synth.py --split eval --n 300 --jobs 2   # held-out voices, x codecs
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SR = 16000
CODECS = ["none", "gsm", "ulaw", "alaw", "amr"]
# Decoder-side sox type and encoder options per codec; all run at 8 kHz mono.
CODEC_SOX = {"gsm": ["-t", "gsm"], "ulaw": ["-t", "ul"], "alaw": ["-t", "al"], "amr": ["-t", "amr-nb"]}


# ---- text ----------------------------------------------------------------------------------
def digit_word(d, oh):
    return "oh" if d == 0 and oh else common.DIGIT_WORDS[d]


# Everyday telephone words around the digits, so the model learns to spell them instead of hearing digits
# in them. Prefixes come before a number, suffixes after; "alone" phrases are whole utterances. None of
# these words is in the lexicon, except yes/no (which the decoder must keep as listed words).
CARRIER_PREFIX = ["my number is", "please call me at", "you can reach me at", "call me back at", "the number is",
                  "my account number is", "my extension is", "extension", "the code is", "my pin is", "it's",
                  "that's", "i said", "hello", "hi", "yes it's", "no it's", "um", "okay", "so", "area code",
                  "my phone number is", "the reference is", "order number", "room", "call", "dial", "it is"]
CARRIER_SUFFIX = ["thank you", "thanks", "please", "that's it", "bye", "goodbye", "okay", "is that right",
                  "again", "thank you very much", "that's all", "right"]
CARRIER_ALONE = ["hello", "yes", "no", "yes please", "no thanks", "hello is anyone there", "sorry",
                 "can you repeat that", "i don't know", "speak to an agent", "operator please", "my name is john smith",
                 "this is david", "my name is sarah", "hold on a second", "just a moment", "wrong number",
                 "good morning", "good afternoon", "who is this", "can you hear me", "i'd like to pay my bill",
                 "maria", "michael", "jennifer brown", "robert", "thank you", "okay", "bye bye", "what",
                 "i'm calling about my order", "the line is bad", "let me check", "hang on"]


def carrier_groups(rng, oh):
    """A number inside everyday words: [prefix] digits [suffix], or a phrase alone."""
    if rng.random() < 0.2:
        return [rng.choice(CARRIER_ALONE).split()]
    pat = rng.choice([(3, 3, 4), (3, 4), (4,), (5,), (2,), (1,), (3,), (4, 4), (6,), (3, 3, 3)])
    groups = [[digit_word(rng.randrange(10), oh) for _ in range(g)] for g in pat]
    r = rng.random()
    if r < 0.8:
        groups = [rng.choice(CARRIER_PREFIX).split()] + groups
    if r > 0.55:
        groups = groups + [rng.choice(CARRIER_SUFFIX).split()]
    if rng.random() < 0.5:     # carrier and number often run together without a pause
        groups = [groups[0] + groups[1]] + groups[2:]
    return groups


def make_text(rng, kinds=None):
    """Returns (words, groups): words is the transcript, groups the pause structure
    (list of word lists; a pause is spoken between groups). kinds restricts the utterance type."""
    oh = rng.random() < 0.35
    names, weights = ["digits", "phone", "menu", "mixed", "carrier"], [0.28, 0.16, 0.16, 0.2, 0.2]
    if kinds:
        names, weights = [k for k in names if k in kinds], [w for k, w in zip(names, weights) if k in kinds]
    kind = rng.choices(names, weights)[0]
    if kind == "carrier":
        groups = carrier_groups(rng, oh)
    elif kind == "digits":
        n = rng.choice(list(range(1, 13)) + [1, 2, 3, 4, 4, 5, 6])
        ds = [digit_word(rng.randrange(10), oh) for _ in range(n)]
        mode = rng.random()
        if mode < 0.5:          # read as one sentence
            groups = [ds]
        elif mode < 0.8:        # separate words with pauses
            groups = [[w] for w in ds]
        else:                   # random chunks
            groups, i = [], 0
            while i < n:
                k = rng.randint(1, 4)
                groups.append(ds[i:i + k])
                i += k
    elif kind == "phone":
        pat = rng.choice([(3, 3, 4), (3, 4), (3, 3, 4), (4, 3, 4), (5, 6), (2, 2, 2, 2), (1, 3, 3, 4),
                          (4, 4), (3, 3, 3), (4, 6)])
        groups = [[digit_word(rng.randrange(10), oh) for _ in range(g)] for g in pat]
    elif kind == "menu":
        w = rng.choice(common.MENU_WORDS)
        r = rng.random()
        if w == "press" or r < 0.3:
            tgt = rng.choice(["star", "pound", "hash"] + [digit_word(rng.randrange(10), oh)] * 4)
            groups = [["press", tgt]] if w == "press" or r < 0.15 else [[w], ["press", tgt]]
        elif r < 0.45:
            groups = [[w], [rng.choice(common.MENU_WORDS)]]
        else:
            groups = [[w]]
    else:  # mixed: menu words and digits in any order, 1-7 words
        n = rng.randint(1, 7)
        ws = [rng.choice(common.MENU_WORDS) if rng.random() < 0.4 else digit_word(rng.randrange(10), oh)
              for _ in range(n)]
        groups, i = [], 0
        while i < n:
            k = rng.randint(1, 3)
            groups.append(ws[i:i + k])
            i += k
    words = [w for g in groups for w in g]
    return " ".join(words), groups


def tts_text(groups, rng):
    """Pause marks between groups: ',' is short, '.' longer (all three engines honour both)."""
    sep = rng.choice([", ", ". ", ", ", " . "])
    if len(groups) == 1:
        return " ".join(groups[0])
    return sep.join(" ".join(g) for g in groups)


# ---- TTS -----------------------------------------------------------------------------------
def pick_voice(rng, vlist):
    # Balance sexes per utterance (the espeak variant list has more male variants), and give
    # the non-espeak engines a fixed share because they sound most like recorded speech.
    eng = rng.choices(["espeak", "flite", "festival"], [0.62, 0.23, 0.15])[0]
    cands = [v for v in vlist if v[0] == eng]
    if not cands:
        cands = vlist
    if eng == "espeak":
        sex = "f" if rng.random() < 0.5 else "m"
        c2 = [v for v in cands if v[2] == sex]
        cands = c2 or cands
    return rng.choice(cands)


def run(cmd, inp=None):
    r = subprocess.run(cmd, input=inp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd[:4]), r.stderr.decode(errors="replace")[:300]))
    return r.stdout


def tts_espeak(voice, text, rng, path):
    run(["espeak-ng", "-v", voice, "-s", str(rng.randint(120, 215)), "-p", str(rng.randint(25, 80)),
         "-g", str(rng.choice([0, 0, 2, 5, 10, 20])), "-w", path, text])


def tts_flite(voice, text, rng, path):
    # flite's default f0 means are ~100-170 Hz; shift around them, stretch duration.
    f0 = {"slt": 170, "rms": 105}.get(voice, 105) * rng.uniform(0.85, 1.2)
    run(["flite", "-voice", voice, "-t", text, "-o", path,
         "--setf", "duration_stretch=%.2f" % rng.uniform(0.85, 1.35),
         "--setf", "int_f0_target_mean=%.0f" % f0])


def tts_festival_batch(jobs, tmp):
    """jobs: list of (voice, text, stretch, path). One festival process per batch: its start-up
    costs ~0.7 s, longer than synthesizing a short utterance."""
    scm = os.path.join(tmp, "batch.scm")
    with open(scm, "w") as f:
        for voice, text, stretch, path in jobs:
            t = text.replace("\\", "").replace('"', "")
            f.write("(voice_%s)\n(Parameter.set 'Duration_Stretch %.2f)\n" % (voice, stretch))
            f.write('(utt.save.wave (utt.synth (Utterance Text "%s")) "%s" \'riff)\n' % (t, path))
    run(["festival", "-b", scm])


# ---- channel -------------------------------------------------------------------------------
def colored_noise(n, kind, rng_np):
    w = rng_np.standard_normal(n)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=np.float64) + 1.0
    spec /= np.sqrt(f) if kind == "pink" else f        # 1/f power (pink) or 1/f^2 (brown)
    x = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-9)


def room_ir(rng, rate):
    """A synthesized room + handset impulse response: a direct path, a few early reflections (2-25 ms) and an
    exponentially decaying noise tail with RT60 0.1-0.6 s (small office to hall), its level 6-20 dB under the
    direct sound. RT60 is the time for a 60 dB decay: amplitude envelope exp(-6.9 t / RT60)."""
    rt60 = rng.uniform(0.1, 0.6)
    n = int(rate * min(0.5, rt60))
    t = np.arange(n) / rate
    r = np.random.default_rng(rng.randrange(1 << 30))
    h = r.standard_normal(n) * np.exp(-6.9 * t / rt60) * 10 ** (-rng.uniform(6, 20) / 20) * 0.1
    h[0] = 1.0
    for _ in range(rng.randint(1, 4)):
        h[min(n - 1, int(rate * rng.uniform(0.002, 0.025)))] += rng.uniform(-0.6, 0.6)
    return h, rt60


def handset_eq(rng):
    """sox equalizer bands: a handset's uneven response (1-3 peaks/dips of +-3..9 dB, 400-3000 Hz)."""
    eff = []
    for _ in range(rng.randint(1, 3)):
        eff += ["equalizer", "%d" % rng.randint(400, 3000), "%.1fq" % rng.uniform(0.7, 2.5),
                "%+.1f" % (rng.choice([-1, 1]) * rng.uniform(3, 9))]
    return eff


def drop_frames(y, rng, rate=16000):
    """Lost 20 ms packets, as on a VoIP leg: 1-6% of frames replaced by silence or by the previous frame
    (the two common concealments)."""
    y = y.copy()
    f = rate // 50
    p = rng.uniform(0.01, 0.06)
    for k in range(1, len(y) // f):
        if rng.random() < p:
            y[k * f:(k + 1) * f] = 0 if rng.random() < 0.5 else y[(k - 1) * f:k * f]
    return y


def channel(src, rng, settings, babble_pool, wideband, codec, levers=False):
    """src: a TTS wav path. Returns int16 samples at 16 kHz and fills `settings`. levers adds the second set of
    robustness levers (room/handset responses, codec chains, lost frames) drawn from their own generator, so a
    corpus made without them is reproduced exactly."""
    lrng = random.Random(rng.random()) if levers else None
    rng_np = np.random.default_rng(rng.randrange(1 << 30))
    tempo = rng.uniform(0.85, 1.2) if rng.random() < 0.7 else 1.0
    pitch = rng.uniform(-350, 450) if rng.random() < 0.6 else 0.0
    speed = rng.uniform(0.92, 1.1) if rng.random() < 0.4 else 1.0     # formants + pitch together
    lo, hi = rng.randint(200, 400), rng.randint(3100, 3500)
    settings.update(tempo=round(tempo, 3), pitch=round(pitch), speed=round(speed, 3))
    eff = ["remix", "1"]
    if abs(tempo - 1) > 1e-3:
        eff += ["tempo", "-s", "%.3f" % tempo]
    if abs(pitch) > 1:
        eff += ["pitch", "%.0f" % pitch]
    if abs(speed - 1) > 1e-3:
        eff += ["speed", "%.3f" % speed]
    if lrng and lrng.random() < 0.4:
        eff += handset_eq(lrng)
        settings.update(handset_eq=True)
    rate = 16000 if wideband else 8000
    if not wideband:
        eff += ["rate", "-h", "16000", "sinc", "%d-%d" % (lo, hi)]
        settings.update(band="%d-%d" % (lo, hi))
    eff += ["rate", "-h", str(rate)]
    raw = run(common.SOX + [src, "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(rate), "-"]
              + eff)
    x = np.frombuffer(raw, dtype=np.int16).astype(np.float64) / 32768.0
    # Trim the TTS's own silence so padding below controls it.
    nz = np.nonzero(np.abs(x) > 0.003)[0]
    if len(nz):
        x = x[max(0, nz[0] - rate // 50): nz[-1] + rate // 50]
    if lrng and lrng.random() < 0.35:
        h, rt60 = room_ir(lrng, rate)
        x = np.convolve(x, h)[:len(x) + len(h) // 4]
        settings.update(rt60=round(rt60, 2))
    # Level: speech RMS between -36 and -12 dBFS (quiet handsets to hot lines).
    level_db = rng.uniform(-36, -12)
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 10 ** (level_db / 20)
    lead, trail = rng.uniform(0.02, 0.9), rng.uniform(0.02, 0.9)
    x = np.concatenate([np.zeros(int(lead * rate)), x, np.zeros(int(trail * rate))])
    settings.update(level_db=round(level_db, 1), lead=round(lead, 2), trail=round(trail, 2))
    kind = rng.choices(["none", "white", "pink", "brown", "babble"], [0.2, 0.25, 0.25, 0.1, 0.2])[0]
    if kind == "babble" and not babble_pool:
        kind = "pink"
    if kind != "none":
        snr = rng.uniform(8, 40) if kind != "babble" else rng.uniform(14, 30)
        if kind == "babble":
            # Other (unrelated) TTS speech at low level: crosstalk on the line.
            b = np.zeros(len(x))
            for _ in range(rng.randint(1, 3)):
                s = babble_pool[rng.randrange(len(babble_pool))]
                s = s[::2] if rate == 8000 else s   # pool is 16 kHz; crude decimation is fine for noise
                off = rng.randrange(max(1, len(x)))
                seg = np.resize(s, len(x))
                b += np.roll(seg, off)
            nz_ = b / (np.std(b) + 1e-9)
        else:
            nz_ = colored_noise(len(x), kind, rng_np)
        sp = 10 ** (level_db / 20)
        x = x + nz_ * sp * 10 ** (-snr / 20)
        settings.update(noise=kind, snr=round(snr, 1))
    if rng.random() < 0.1:   # handset/line hum, 50 or 60 Hz harmonics survive a 200 Hz high-pass weakly
        f = rng.choice([50, 60])
        t = np.arange(len(x)) / rate
        x = x + 10 ** (rng.uniform(-55, -40) / 20) * sum(np.sin(2 * np.pi * f * k * t) for k in (3, 5, 7))
    peak = np.max(np.abs(x)) + 1e-9
    if peak > 0.99:   # clip mildly sometimes (hot lines), else scale
        x = np.clip(x, -1, 1) if rng.random() < 0.3 else x * 0.99 / peak
    pcm = (x * 32767).astype(np.int16).tobytes()
    settings.update(codec=codec)
    if wideband:
        return np.frombuffer(pcm, dtype=np.int16)
    base = common.SOX + ["-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-"]
    if codec == "none":
        out = run(base + ["-t", "raw", "-e", "signed", "-b", "16", "-r", "16000", "-", "rate", "-h", "16000"], pcm)
    else:
        enc = list(CODEC_SOX[codec])
        if codec == "amr":
            mode = rng.randint(0, 7)      # 4.75 .. 12.2 kbit/s
            settings.update(amr_mode=mode)
            enc += ["-C", str(mode)]
        coded = run(base + enc + ["-"], pcm)
        if lrng and lrng.random() < 0.25:
            # A codec chain (mobile leg then a GSM/G.711 trunk): decode, then through a second codec.
            second = lrng.choice([c for c in CODEC_SOX if c != codec])
            pcm2 = run(common.SOX + CODEC_SOX[codec] + ["-r", "8000", "-c", "1", "-", "-t", "raw", "-e",
                                                            "signed", "-b", "16", "-"], coded)
            coded, codec = run(base + list(CODEC_SOX[second]) + ["-"], pcm2), second
            settings.update(codec_chain=settings["codec"] + "+" + second)
        out = run(common.SOX + CODEC_SOX[codec] + ["-r", "8000", "-c", "1", "-", "-t", "raw", "-e", "signed",
                                                       "-b", "16", "-r", "16000", "-", "rate", "-h", "16000"], coded)
    y = np.frombuffer(out, dtype=np.int16)
    if lrng and lrng.random() < 0.2:
        y = drop_frames(y, lrng)
        settings.update(lost_frames=True)
    return y


# ---- shards --------------------------------------------------------------------------------
def do_shard(args):
    shard, idxs, split, seed, out_dir, kinds, levers = args
    vlist = common.voices(split)
    tmp = tempfile.mkdtemp(prefix="mp-synth-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        plans = []
        fest = []
        for i in idxs:
            rng = random.Random("%d-%s-%d" % (seed, split, i))
            text, groups = make_text(rng, kinds)
            eng, voice, sex = pick_voice(rng, vlist)
            ttext = tts_text(groups, rng)
            path = os.path.join(tmp, "%d.wav" % i)
            if eng == "espeak":
                tts_espeak(voice, ttext, rng, path)
            elif eng == "flite":
                tts_flite(voice, ttext, rng, path)
            else:
                fest.append((voice, ttext, rng.uniform(0.85, 1.3), path))
            plans.append((i, rng, text, eng, voice, sex, path))
        if fest:
            tts_festival_batch(fest, tmp)
        babble = []
        meta = []
        raw_path = os.path.join(out_dir, "shard-%03d.raw" % shard)
        off = 0
        # Eval: every utterance through every codec (same speech, so codec rows compare directly);
        # 'clean16k' is the unprocessed wideband TTS with level/silence only.
        with open(raw_path, "wb") as fo:
            for i, rng, text, eng, voice, sex, path in plans:
                if split == "eval":
                    conds = [("clean16k", True, "none")] + [(c, False, c) for c in CODECS]
                else:
                    wb = rng.random() < 0.08
                    codec = rng.choices(CODECS, [0.2, 0.3, 0.15, 0.1, 0.25])[0]
                    conds = [("train", wb, "none" if wb else codec)]
                for cond, wb, codec in conds:
                    crng = random.Random("%d-%s-%d-%s" % (seed, split, i, cond)) if split == "eval" else rng
                    st = {}
                    if split == "eval":
                        y = channel_eval(path, crng, st, wb, codec)
                    else:
                        y = channel(path, crng, st, babble, wb, codec, levers)
                    fo.write(y.tobytes())
                    meta.append(dict(id=i, cond=cond, shard=shard, off=off, n=len(y), text=text,
                                     engine=eng, voice=voice, sex=sex, wideband=wb, **st))
                    off += len(y)
                if split != "eval":
                    b = np.frombuffer(run(common.SOX + [path, "-t", "raw", "-e", "signed", "-b", "16", "-c", "1",
                                           "-r", "16000", "-", "remix", "1", "rate", "-h", "16000"]),
                                      dtype=np.int16).astype(np.float64)
                    babble.append(b / (np.std(b) + 1e-9))
                    babble = babble[-30:]
                os.unlink(path)
        return meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def channel_eval(src, rng, settings, wideband, codec):
    """Held-out evaluation channel: no voice manipulation, mild level range and light white
    noise (35-45 dB SNR), so rows differ only by voice and codec."""
    rate = 16000 if wideband else 8000
    eff = ["remix", "1"]
    if not wideband:
        eff += ["sinc", "300-3400"]
    eff += ["rate", "-h", str(rate)]
    raw = run(common.SOX + [src, "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(rate), "-"] + eff)
    x = np.frombuffer(raw, dtype=np.int16).astype(np.float64) / 32768.0
    level_db = rng.uniform(-26, -16)
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 10 ** (level_db / 20)
    x = np.concatenate([np.zeros(int(0.3 * rate)), x, np.zeros(int(0.3 * rate))])
    snr = rng.uniform(35, 45)
    x = x + np.random.default_rng(rng.randrange(1 << 30)).standard_normal(len(x)) * 10 ** ((level_db - snr) / 20)
    x = x * min(1.0, 0.99 / (np.max(np.abs(x)) + 1e-9))
    pcm = (x * 32767).astype(np.int16).tobytes()
    settings.update(level_db=round(level_db, 1), snr=round(snr, 1), codec=codec)
    if wideband:
        return np.frombuffer(pcm, dtype=np.int16)
    base = common.SOX + ["-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-"]
    if codec == "none":
        return np.frombuffer(run(base + ["-t", "raw", "-e", "signed", "-b", "16", "-r", "16000", "-",
                                         "rate", "-h", "16000"], pcm), dtype=np.int16)
    enc = list(CODEC_SOX[codec]) + (["-C", "7"] if codec == "amr" else [])   # AMR 12.2 kbit/s
    coded = run(base + enc + ["-"], pcm)
    return np.frombuffer(run(common.SOX + CODEC_SOX[codec] + ["-r", "8000", "-c", "1", "-", "-t", "raw",
                                                                  "-e", "signed", "-b", "16", "-r", "16000", "-",
                                                                  "rate", "-h", "16000"], coded), dtype=np.int16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["train", "eval"], required=True)
    ap.add_argument("--n", type=int, required=True, help="utterances (eval: each goes through every codec)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--shard-size", type=int, default=250)
    ap.add_argument("--out", default=None)
    ap.add_argument("--kinds", default="", help="utterance types, comma-separated (default all): "
                    "digits,phone,menu,mixed,carrier")
    ap.add_argument("--levers", action="store_true", help="train split: also room/handset responses, codec chains "
                    "and lost 20 ms frames (see channel())")
    a = ap.parse_args()
    kinds = set(k for k in a.kinds.split(",") if k)
    out = a.out or os.path.join(common.WORK, a.split)
    os.makedirs(out, exist_ok=True)
    idx_path = os.path.join(out, "index.jsonl")
    # Resumable: shards whose metadata exists are kept.
    done = {}
    part_dir = os.path.join(out, "parts")
    os.makedirs(part_dir, exist_ok=True)
    for fn in os.listdir(part_dir):
        done[int(fn.split("-")[1].split(".")[0])] = True
    shards = []
    for s, start in enumerate(range(0, a.n, a.shard_size)):
        if s not in done:
            shards.append((s, list(range(start, min(a.n, start + a.shard_size))), a.split, a.seed, out, kinds, a.levers))
    t0 = time.time()
    with Pool(a.jobs) as pool:
        for k, meta in enumerate(pool.imap_unordered(do_shard, shards)):
            s = meta[0]["shard"] if meta else -1
            with open(os.path.join(part_dir, "part-%03d.jsonl" % s), "w") as f:
                for m in meta:
                    f.write(json.dumps(m) + "\n")
            print("shard %d done (%d/%d), %.0f s" % (s, k + 1, len(shards), time.time() - t0), flush=True)
    rows = []
    for fn in sorted(os.listdir(part_dir)):
        with open(os.path.join(part_dir, fn)) as f:
            rows += [json.loads(l) for l in f]
    rows.sort(key=lambda r: (r["id"], r["cond"]))
    with open(idx_path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    hours = sum(r["n"] for r in rows) / SR / 3600
    with open(os.path.join(out, "settings.json"), "w") as f:
        json.dump(dict(split=a.split, n=a.n, seed=a.seed, shard_size=a.shard_size, kinds=sorted(kinds), levers=a.levers, hours=round(hours, 3),
                       voices=common.voices(a.split)), f, indent=1)
    print("%s: %d clips, %.2f h, in %s (%.0f s)" % (a.split, len(rows), hours, out, time.time() - t0))


if __name__ == "__main__":
    main()
