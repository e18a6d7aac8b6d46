#!/usr/bin/python3
"""CLI contract tests for `modelpool`: run the real binary on the committed torchaudio
reference fixtures and check its output formats, exit codes and errors. usage: test-cli.py MODELPOOL CASE"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN, CASE = sys.argv[1], sys.argv[2]
REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "ref")


def run(*args, stdin=None):
    p = subprocess.run([BIN, *args], capture_output=True, input=stdin, timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def ref(config):
    with open(os.path.join(REF, config, "reference.json"), encoding="utf-8") as f:
        return json.load(f)


def wav(name):
    return os.path.join(REF, "inputs", name + ".wav")


def check(cond, msg):
    if not cond:
        print("FAIL:", msg, file=sys.stderr)
        sys.exit(1)


def case_text():
    # one file: the transcript alone, equal to torchaudio's (via the fixture's expected text)
    for config in ("base_like", "utf8"):
        r = ref(config)
        rc, out, err = run("transcribe", "--model", os.path.join(REF, config), wav("in1"))
        check(rc == 0, f"{config}: exit {rc}: {err}")
        check(out == r["inputs"][1]["text"] + "\n", f"{config}: {out!r} != {r['inputs'][1]['text']!r}")


def case_batch():
    # several files: FILE<TAB>text per line, in input order; a bad file is reported, the batch goes on, exit != 0
    r = ref("base_like")
    model = os.path.join(REF, "base_like")
    rc, out, err = run("transcribe", "--model", model, wav("in0"), wav("in1"))
    check(rc == 0, f"exit {rc}: {err}")
    lines = out.splitlines()
    check(lines == [f"{wav('in0')}\t{r['inputs'][0]['text']}", f"{wav('in1')}\t{r['inputs'][1]['text']}"], out)
    rc, out, err = run("transcribe", "--model", model, wav("in0"), "/nonexistent.wav", wav("in1"))
    check(rc != 0, "a failed file must make the exit code non-zero")
    check(len(out.splitlines()) == 2 and "/nonexistent.wav" in err, f"out={out!r} err={err!r}")


def case_json():
    r = ref("base_like")
    model = os.path.join(REF, "base_like")
    rc, out, err = run("transcribe", "--model", model, "--format", "json", wav("in1"), REF)
    check(rc != 0, "the directory input must fail the batch")
    objs = [json.loads(line) for line in out.splitlines()]
    check(len(objs) == 2, out)
    ok, bad = objs
    check(ok["file"] == wav("in1") and ok["text"] == r["inputs"][1]["text"], ok)
    check(abs(ok["duration_s"] - r["inputs"][1]["n_samples"] / 16000) < 1e-6, ok["duration_s"])
    check([w["word"] for w in ok["words"]] == ok["text"].split(), "words must spell the text")
    last = 0.0
    for w in ok["words"]:
        check(last <= w["start"] < w["end"] <= ok["duration_s"] + 0.02, f"word times out of order: {w}")
        check(0.0 <= w["confidence"] <= 1.0, w)
        last = w["end"]
    check(bad["file"] == REF and bad["error"]["code"] and bad["error"]["message"], bad)


def case_dump_logits():
    r = ref("large_like")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "l.npy")
        rc, out, err = run("transcribe", "--model", os.path.join(REF, "large_like"), "--dump-logits", path, wav("in1"))
        check(rc == 0, err)
        got = np.load(path)
        want = np.load(os.path.join(REF, "large_like", r["inputs"][1]["logits"]))
        check(got.dtype == np.float32 and got.shape == want.shape, f"{got.dtype} {got.shape} vs {want.shape}")
        tol = 1e-3 * max(1.0, float(np.abs(want).max()))
        check(float(np.abs(got - want).max()) <= tol, f"max diff {np.abs(got - want).max()} > {tol}")
    rc, _, err = run("transcribe", "--arch", "tiny", "--dump-logits", "/tmp/x.npy", wav("in0"), wav("in1"))
    check(rc == 2 and "one input" in err, "dump-logits with two files is a usage error")


def case_info():
    rc, out, err = run("info", "--model", os.path.join(REF, "utf8"), "--format", "json")
    check(rc == 0, err)
    i = json.loads(out)
    check(i["architecture"] == "Wav2Vec2ForCTC" and i["vocab_size"] == 94 and i["frame_stride"] == 320, i)
    # weight_bytes counts the fp32 the engine reads: the weight-normed pos conv replaces weight_g + weight_v
    check(i["n_params"] > 0 and abs(i["weight_bytes"] - 4 * i["n_params"]) <= 0.01 * 4 * i["n_params"], i)
    check(i["dtype"] == "F32", i)
    rc, out, err = run("info", "--model", os.path.join(REF, "bf16"))
    check(rc == 0 and "BF16" in out, out)
    rc, out, err = run("info", "--model", "/nonexistent-model")
    check(rc != 0 and "/nonexistent-model" in err, err)


def case_usage():
    _, top, _ = run("--help")
    cmds = ["transcribe", "info", "bench"] + (["serve"] if "  serve " in top else [])  # serve: MP_BUILD_SERVER
    for cmd in cmds:
        rc, out, _ = run(cmd, "--help")
        check(rc == 0 and "usage: modelpool " + cmd in out, f"{cmd} --help")
    rc, _, err = run("frobnicate")
    check(rc == 2 and "unknown command" in err, err)
    rc, _, err = run("transcribe")
    check(rc == 2 and "no input files" in err, err)
    rc, _, err = run("transcribe", "--format", "xml", "a.wav")
    check(rc == 2, err)
    rc, _, err = run("transcribe", "--bogus", "a.wav")
    check(rc == 2 and "--bogus" in err, err)


def case_stdin():
    r = ref("base_like")
    with open(wav("in0"), "rb") as f:
        data = f.read()
    rc, out, err = run("transcribe", "--model", os.path.join(REF, "base_like"), "-", stdin=data)
    check(rc == 0 and out == r["inputs"][0]["text"] + "\n", f"{rc} {out!r} {err}")


def parse_cues(text, vtt):
    """[(start_ms, end_ms, [words])] from SubRip or WebVTT text, checking the layout strictly."""
    import re
    if vtt:
        check(text.startswith("WEBVTT\n\n"), f"no WEBVTT header: {text[:40]!r}")
        text = text[len("WEBVTT\n\n"):]
    sep = "." if vtt else ","
    pat = re.compile(r"(\d\d):(\d\d):(\d\d)" + re.escape(sep) + r"(\d\d\d) --> (\d\d):(\d\d):(\d\d)"
                     + re.escape(sep) + r"(\d\d\d)$")
    cues = []
    blocks = [b for b in text.split("\n\n") if b]
    check(text == "" or text.endswith("\n\n"), "cues must end with a blank line")
    for k, b in enumerate(blocks):
        lines = b.split("\n")
        if not vtt:
            check(lines[0] == str(k + 1), f"cue number {lines[0]!r}, want {k + 1}")
            lines = lines[1:]
        check(len(lines) == 2, f"cue {k + 1}: {lines!r}")
        m = pat.match(lines[0])
        check(m is not None, f"time line {lines[0]!r}")
        g = [int(x) for x in m.groups()]
        t0 = ((g[0] * 60 + g[1]) * 60 + g[2]) * 1000 + g[3]
        t1 = ((g[4] * 60 + g[5]) * 60 + g[6]) * 1000 + g[7]
        cues.append((t0, t1, lines[1].split(" ")))
    return cues


def case_subtitles():
    # srt/vtt cues carry exactly the JSON words, in order, with those words' times
    model = os.path.join(REF, "base_like")
    rc, out, err = run("transcribe", "--model", model, "--format", "json", wav("in1"))
    check(rc == 0, err)
    words = json.loads(out)["words"]
    check(len(words) > 0, "fixture has no words")
    for fmt in ("srt", "vtt"):
        rc, out, err = run("transcribe", "--model", model, "--format", fmt, wav("in1"))
        check(rc == 0, f"{fmt}: exit {rc}: {err}")
        cues = parse_cues(out, fmt == "vtt")
        check(sum((c[2] for c in cues), []) == [w["word"] for w in words], f"{fmt}: cue words != JSON words")
        i, prev_end = 0, -1
        for t0, t1, ws in cues:
            check(1 <= len(ws) <= 12, f"{fmt}: cue of {len(ws)} words")
            check(abs(t0 - words[i]["start"] * 1000) <= 1 and abs(t1 - words[i + len(ws) - 1]["end"] * 1000) <= 1,
                  f"{fmt}: cue {t0}-{t1} ms vs words {words[i]} .. {words[i + len(ws) - 1]}")
            check(t0 >= prev_end and t1 >= t0, f"{fmt}: cues out of order")
            prev_end, i = t1, i + len(ws)
    # a pause of 2 s starts a new cue: the bundled sample twice, 2 s apart, with the embedded model
    import wave
    sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples", "phone-gsm.wav")
    with wave.open(sample) as w:
        p, frames = w.getparams(), w.readframes(w.getnframes())
    with tempfile.TemporaryDirectory() as d:
        two = os.path.join(d, "two.wav")
        with wave.open(two, "wb") as w:
            w.setparams(p)
            w.writeframes(frames + b"\0" * (2 * p.framerate * p.sampwidth) + frames)
        rc, out, err = run("transcribe", "--beam", "16", "--format", "srt", two)
        check(rc == 0, err)
        cues = parse_cues(out, False)
        check(len(cues) == 2 and cues[0][2] == cues[1][2], f"want two equal cues: {out!r}")
        check(cues[1][0] - cues[0][1] >= 2000, f"cue gap {cues[1][0] - cues[0][1]} ms")
        # back to back, 20 words in ~8 s: cut so that no cue exceeds 12 words or 7 s
        with wave.open(two, "wb") as w:
            w.setparams(p)
            w.writeframes(frames + frames)
        rc, out, err = run("transcribe", "--beam", "16", "--format", "vtt", two)
        check(rc == 0, err)
        cues = parse_cues(out, True)
        check(len(cues) >= 2 and sum(len(c[2]) for c in cues) == 20, f"back to back: {out!r}")
        check(all(len(c[2]) <= 12 and c[1] - c[0] <= 7000 for c in cues), f"cue too long: {out!r}")
    # one input file only
    rc, out, err = run("transcribe", "--model", model, "--format", "srt", wav("in0"), wav("in1"))
    check(rc == 2 and "one input file" in err, f"two files with srt: exit {rc}: {err}")


{"text": case_text, "batch": case_batch, "json": case_json, "dump_logits": case_dump_logits, "info": case_info,
 "usage": case_usage, "stdin": case_stdin, "subtitles": case_subtitles}[CASE]()
print("ok", CASE)
