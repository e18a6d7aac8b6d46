"""Shared definitions for the digits-model pipeline: vocabulary, lexicon, voices, model config.

Everything that synthesis, training, export and evaluation must agree on lives here, so one
edit changes all of them together. Run every script with /usr/bin/python3 (Debian torch).
"""
import json
import os
import sys

# Where corpora and checkpoints go: never inside the repository.
WORK = os.environ.get("MP_TRAIN_DIR", "/var/tmp/modelpool-train")
# sox, quiet, with repeatable dither (-R seeds it, so the same input gives the same bytes: a set
# synthesized from its seed is the same audio on every run).
SOX = ["sox", "-R", "-V1"]
# The evaluation sets' telephone conditions (synth.py): wideband TTS, 8 kHz PCM, then the codecs.
EVAL_CONDS = ["clean16k", "none", "gsm", "ulaw", "alaw", "amr"]

# facebook/wav2vec2-base-960h's vocabulary: CTC blank <pad>=0, word
# delimiter |=4, then letters by frequency and the apostrophe. Keeping the exact ids makes the
# model a drop-in for tools that assume that tokenizer.
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|",
         "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F", "G",
         "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
BLANK = 0
DELIM = 4
CHAR_ID = {c: i for i, c in enumerate(VOCAB)}

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MENU_WORDS = ["yes", "no", "star", "pound", "hash", "cancel", "repeat", "operator", "help",
              "stop", "press", "agent"]
# The closed word list shipped as models/digits/lexicon.txt (constrained decoding).
LEXICON = DIGIT_WORDS + ["oh"] + MENU_WORDS


def encode_text(text):
    """Transcript -> label ids: words joined by '|', upper-case letters (HF tokenizer convention)."""
    ids = []
    for wi, w in enumerate(text.split()):
        if wi:
            ids.append(DELIM)
        ids.extend(CHAR_ID[c] for c in w.upper())
    return ids


def greedy_decode(ids):
    """CTC greedy decode exactly as Wav2Vec2CTCTokenizer: collapse repeats, drop blank, '|' -> space."""
    out, prev = [], None
    for i in ids:
        if i != prev and i != BLANK:
            out.append(VOCAB[i] if i != DELIM else " ")
        prev = i
    toks = [t for t in out if t not in ("<s>", "</s>", "<unk>")]
    return " ".join("".join(toks).lower().split())


def edit_distance(a, b):
    """Levenshtein distance between two sequences: characters of two strings, or words of two lists
    (substitution, insertion and deletion each cost 1). One row of the table at a time: O(len(b)) memory."""
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(b)]


def wer_counts(ref, hyp):
    """(word errors, reference words) of transcript hyp against ref."""
    r = ref.split()
    return edit_distance(r, hyp.split()), len(r)


# ---- the C engine over a corpus ------------------------------------------------------------
def shard_pcm(corpus_dir, row, maps):
    """A corpus row's int16 16 kHz samples: synth.py's shard-NNN.raw files, each memory-mapped once into maps."""
    import numpy as np  # not at import time: blas_env must be able to run before OpenBLAS loads
    s = row["shard"]
    if s not in maps:
        maps[s] = np.memmap(os.path.join(corpus_dir, "shard-%03d.raw" % s), dtype=np.int16, mode="r")
    return np.asarray(maps[s][row["off"]:row["off"] + row["n"]], dtype=np.int16)


def engine_transcripts(cli, model_dir, corpus_dir, rows, options=(), maps=None):
    """What the C engine hears in corpus rows, in their order, each as a list of lower-case words: every
    row written as a 16 kHz WAV into a temporary directory, then one `CLI transcribe --model MODEL_DIR
    --format json --workers 1 OPTIONS FILES...` (a file it could not transcribe reads as no words)."""
    import subprocess
    import tempfile
    import wave
    maps = {} if maps is None else maps
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k, r in enumerate(rows):
            p = os.path.join(tmp, "%04d.wav" % k)
            with wave.open(p, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(shard_pcm(corpus_dir, r, maps).tobytes())
            files.append(p)
        out = subprocess.run([cli, "transcribe", "--model", model_dir, "--format", "json", "--workers", "1",
                              *options, *files], stdout=subprocess.PIPE, check=True).stdout
    got = {}
    for line in out.decode().splitlines():
        o = json.loads(line)
        got[o["file"]] = o.get("text", "").lower().split()
    return [got.get(p, []) for p in files]


# ---- voices -------------------------------------------------------------------------------
# espeak-ng accents (all in Debian espeak-ng-data) and voice variants (!v directory).
ESPEAK_ACCENTS = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029"]
ESPEAK_VARIANTS_F = ["f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika", "aunty",
                     "belinda", "grandma", "linda", "shelby", "steph", "steph2"]
ESPEAK_VARIANTS_M = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "klatt", "klatt2",
                     "klatt3", "klatt4", "adam", "Alex", "Andy", "antonio", "benjamin", "boris",
                     "caleb", "david", "ed", "edward", "grandpa", "iven", "john", "max",
                     "michel", "norbert", "paul", "quincy", "rob", "robert", "travis",
                     "victor", "zac", ""]
# Held out: never synthesized for training. f4 and linda are female, m3 and klatt4 male;
# flite's rms is a male CMU ARCTIC voice from a different engine than espeak.
HELDOUT_ESPEAK_VARIANTS = ["f4", "linda", "m3", "klatt4"]
FLITE_TRAIN = ["kal", "kal16", "awb", "slt"]
FLITE_HELDOUT = ["rms"]
FESTIVAL_TRAIN = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
FESTIVAL_HELDOUT = []


def voices(split):
    """List of (engine, name, sex) for split 'train' or 'eval' (held-out voices only)."""
    out = []
    held = split == "eval"
    for acc in ESPEAK_ACCENTS:
        for sex, vs in (("f", ESPEAK_VARIANTS_F), ("m", ESPEAK_VARIANTS_M)):
            for v in vs:
                if (v in HELDOUT_ESPEAK_VARIANTS) == held:
                    out.append(("espeak", acc + ("+" + v if v else ""), sex))
    for v in (FLITE_HELDOUT if held else FLITE_TRAIN):
        out.append(("flite", v, "f" if v == "slt" else "m"))
    for v in (FESTIVAL_HELDOUT if held else FESTIVAL_TRAIN):
        out.append(("festival", v, "f" if "slt" in v else "m"))
    return out


# ---- model ---------------------------------------------------------------------------------
# A small wav2vec2: 4 conv layers with total stride 5*4*4*4 = 320 (50 frames/s, like base),
# narrow early channels because layer 1 runs at 3200 frames/s and dominates conv cost;
# pre-LN transformer ("stable layer norm"), which trains from scratch without warm-start tricks.
MODEL_CFG = dict(
    extractor_mode="group_norm",
    extractor_conv_layer_config=[(128, 10, 5), (128, 5, 4), (256, 4, 4), (256, 4, 4)],
    extractor_conv_bias=False,
    encoder_embed_dim=256,
    encoder_projection_dropout=0.05,
    encoder_pos_conv_kernel=64,
    encoder_pos_conv_groups=16,
    encoder_num_layers=5,
    encoder_num_heads=4,
    encoder_attention_dropout=0.05,
    encoder_ff_interm_features=1024,
    encoder_ff_interm_dropout=0.05,
    encoder_dropout=0.1,
    encoder_layer_norm_first=True,
    encoder_layer_drop=0.0,
    aux_num_out=len(VOCAB),
)


def build_model(cfg=None):
    import torchaudio
    return torchaudio.models.wav2vec2_model(**(cfg or MODEL_CFG))


def blas_env():
    """Debian's torch does its products in OpenBLAS 0.3.21, which does not recognise some AVX-512 Xeons and
    falls back to SSE3 kernels (~5x slower training steps), and whose own threads ignore torch's thread count.
    OpenBLAS gets one thread: torch's own OpenMP team (`threads`) already splits the work, and a second team
    of OpenBLAS threads under it spins against it (sched_yield and libgomp's spin loop were ~45% of a
    training step's samples under `perf record`; 6.4 -> 2.5 s a step on 2 cores of a Zen 3, same losses).
    Must run before numpy or torch is imported (both load OpenBLAS); an explicit setting in the environment
    wins."""
    if "torch" in sys.modules or "numpy" in sys.modules:
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        with open("/proc/cpuinfo") as f:
            avx512 = " avx512f" in f.read()
    except OSError:
        avx512 = False
    if avx512:
        os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")


# Every tool imports this module before numpy or torch, so OpenBLAS (loaded by either) sees the settings.
blas_env()


def setup_torch(threads):
    """Debian torch 1.13 on this CPU: oneDNN conv backward yields inf gradients for some shapes, so disable
    it; thread count defaults to 1 here, set it explicitly."""
    blas_env()
    import torch
    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(threads)
    return torch
