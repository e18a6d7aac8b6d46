#!/usr/bin/python3
"""CLI contract tests for `modelpool`: run the real binary on the committed torchaudio
reference fixtures and check its output formats, exit codes and errors. usage: test-cli.py MODELPOOL CASE, or test-cli.py --list"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

BIN = None  # the modelpool binary: argv[1]
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
    check(err.count("/nonexistent.wav") == 1, f"the failed file is named once: {err!r}")


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
    check("config.json, vocab.json and model.safetensors" in err, f"a missing model says what a model directory holds: {err}")


def commands():
    _, top, _ = run("--help")
    return ["transcribe", "info", "bench"] + (["serve"] if "  serve " in top else [])  # serve: MP_BUILD_SERVER


def case_usage():
    for cmd in commands():
        # --help: the usage, one or two examples, the exit codes; --version on every command
        rc, out, _ = run(cmd, "--help")
        check(rc == 0 and "usage: modelpool " + cmd in out, f"{cmd} --help")
        check("Examples:\n  modelpool " + cmd in out and "Exit status: 0 success" in out, f"{cmd} --help: {out}")
        rc, out, _ = run(cmd, "--version")
        check(rc == 0 and out.startswith("modelpool ") and out.count("\n") == 1, f"{cmd} --version: {out!r}")
        # a usage error is one line plus the hint, not the whole usage
        rc, out, err = run(cmd, "--bogus")
        check(rc == 2 and out == "" and err == f"modelpool {cmd}: unknown option '--bogus'\n"
              f"try 'modelpool {cmd} --help'\n", f"{cmd} --bogus: {err!r}")
    rc, _, err = run("frobnicate")
    check(rc == 2 and "unknown command" in err and len(err.splitlines()) == 2, err)
    rc, _, err = run("transcribe")
    check(rc == 2 and "no input files" in err, err)
    rc, _, err = run("transcribe", "--format", "xml", "a.wav")
    check(rc == 2 and "--format" in err and "'xml'" in err, err)
    rc, _, err = run("transcribe", "--model")
    check(rc == 2 and "--model needs a value" in err, err)


def case_option_forms():
    # --opt=value and --opt value mean the same in every command
    w = wav("in1")
    a = run("transcribe", "--arch", "tiny", "--beam", "4", "--lm-alpha", "-1", w)
    b = run("transcribe", "--arch=tiny", "--beam=4", "--lm-alpha=-1", w)
    check(a[0] == 0 and a == b, f"transcribe: {a!r} vs {b!r}")
    g = run("transcribe", "--arch", "tiny", w)
    for beam0 in (("--beam", "0"), ("--beam=0",)):  # 0 = greedy, as on the server
        check(run("transcribe", "--arch", "tiny", *beam0, w) == g, f"{beam0}: not greedy")
    a = run("info", "--arch", "tiny", "--format", "json")
    b = run("info", "--arch=tiny", "--format=json")
    check(a[0] == 0 and json.loads(a[1]) == json.loads(b[1]), f"info: {a!r} vs {b!r}")
    rc, out, err = run("bench", "--arch=tiny", "--requests=1", "--seconds=0.5", "--workers=1", "--format=json")
    check(rc == 0 and json.loads(out)[0]["requests"] == 1, f"bench: {rc} {err}")
    # with the embedded model's decoding.json (beam 16 by default), a given --beam 0 is still greedy
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    sample = os.path.join(root, "samples", "phone-gsm.wav")
    if os.path.exists(os.path.join(root, "models", "digits", "decoding.json")):
        g0 = run("transcribe", "--beam=0", sample)
        g1 = run("transcribe", "--beam", "1", "--lexicon", "none", sample)
        check(g0[0] == 0 and g0 == g1, f"--beam 0 with decoding.json: {g0!r} vs greedy {g1!r}")
    if "serve" in commands():
        for form in (["--port=x"], ["--port", "x"]):
            rc, _, err = run("serve", *form)
            check(rc == 2 and err.startswith("modelpool serve: --port: expected an integer in [0, 65535], got 'x'"),
                  f"serve {form}: {err!r}")


def case_dtype():
    # --dtype fp32|int8, the model option of every command that runs a model: listed by --help, both
    # option forms, the int8 transcript of the sample equal to fp32's, usage errors for bad values
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    sample = os.path.join(root, "samples", "phone-gsm.wav")
    for cmd in [c for c in commands() if c != "info"]:
        rc, out, _ = run(cmd, "--help")
        check(rc == 0 and "--dtype fp32|int8" in out, f"{cmd} --help lists --dtype")
        rc, _, err = run(cmd, "--dtype=int4")
        check(rc == 2 and err.startswith(f"modelpool {cmd}: --dtype: expected fp32 or int8, got 'int4'"), err)
        rc, _, err = run(cmd, "--arch", "tiny", "--dtype", "int8", *(["x.wav"] if cmd == "transcribe" else []))
        check(rc == 2 and "needs a model directory" in err and len(err.splitlines()) == 2, f"{cmd}: {err!r}")
    f = run("transcribe", "--dtype", "fp32", sample)
    a = run("transcribe", "--dtype", "int8", sample)
    b = run("transcribe", "--dtype=int8", sample)
    check(f[0] == 0 and a == b and a[1] == f[1], f"int8 {a!r} / {b!r} vs fp32 {f!r}")
    rc, out, err = run("bench", "--dtype=int8", "--requests=1", "--seconds=0.5", "--workers=1", "--format=json")
    check(rc == 0 and json.loads(out)[0]["errors"] == 0, f"bench int8: {rc} {err}")


def start_server(*args):
    """`modelpool serve --arch tiny --port 0 ARGS`; returns (process, base URL)."""
    p = subprocess.Popen([BIN, "serve", "--arch", "tiny", "--port", "0", *args], stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    if not m:
        p.kill()
        check(False, f"server did not start: {line!r}")
    return p, m.group(1)


def post(url, fields, path):
    """POST the file with form fields (curl --form-string: values are not read as @file); (status, body)."""
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-F", f"file=@{path}"]
    for k, v in fields:
        cmd += ["--form-string", f"{k}={v}"]
    out = subprocess.run(cmd + [url + "/v1/audio/transcriptions"], capture_output=True, text=True, timeout=60).stdout
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


# (field, value) rows, each tried alone (or together, for a tuple of pairs) on both sides.
SAME_OPTIONS = [
    ("beam", "0"), ("beam", "16"), ("beam", "64"), ("beam", "1025"), ("beam", "-1"), ("beam", "x"), ("beam", "2.5"),
    ("hotwords", "A"), ("hotwords", "A:3, I:-2"), ("hotwords", "A:x"), ("hotwords", "A:101"),
    ("hotwords", ",".join(["A"] * 65)), ("hotwords", "QQQQQQQQQQQQ1"),
    ("words", "A, I AN"), ("words", "A1"), ("lexicon", "model"), ("lexicon", "none"), ("lexicon", "maybe.txt"),
    ("lm", "off"), ("lm", "on"), ("lm", "x.arpa"),
    ("lm_alpha", "1"), ("lm_alpha", "-100"), ("lm_alpha", "101"), ("lm_alpha", "1e9"), ("lm_alpha", "nan"),
    ("lm_alpha", "x"), ("lm_beta", "3"), ("lm_beta", "abc"),
    ("channel", "0"), ("channel", "255"), ("channel", "256"), ("channel", "-1"), ("channel", "x"),
    ("raw_format", "s16le"), ("raw_format", "mulaw"), ("raw_format", "ulaw"), ("raw_format", "alaw"),
    ("raw_format", "mp4"), ("raw_rate", "8000"),
    (("raw_format", "s16le"), ("raw_rate", "16000")), (("raw_format", "alaw"), ("raw_rate", "12")),
    (("beam", "8"), ("words", "A I AN"), ("lm_alpha", "2"), ("hotwords", "AN:3")),
]


def cli_outcome(fields, path, n):
    """What transcribe makes of the options, as flags (--opt=value on odd rows, --opt value on even)."""
    args = ["transcribe", "--arch", "tiny", "--format", "json"]
    for k, v in fields:
        flag = "--" + k.replace("_", "-")
        args += [f"{flag}={v}"] if n % 2 else [flag, v]
    rc, out, err = run(*args, path)
    if rc == 2 and not out:
        m = re.match(r"modelpool transcribe: --([a-z-]+): (.*)\ntry 'modelpool transcribe --help'\n$", err)
        check(m is not None, f"{fields}: usage error {err!r}")
        return ("refused", m.group(1).replace("-", "_"), m.group(2))
    if rc != 0 and not out:  # failed before any file ran (a file the options name did not load)
        return ("failed", f"exit {rc}")
    o = json.loads(out)
    return ("ok", o["text"]) if rc == 0 else ("failed", o["error"]["code"])


def server_outcome(url, fields, path):
    code, o = post(url, fields, path)
    if code == 200:
        return ("ok", o["text"])
    e = o["error"]
    if code == 400 and e["code"] in ("bad_decoding_option", "bad_audio_option"):
        name, _, msg = e["message"].partition(": ")
        return ("refused", name, msg)
    return ("failed", e["code"])


def case_same_options():
    # the CLI and the server accept and refuse the same option values, with the same meaning (the
    # same transcript) and the same message; files stay on the CLI's side (lexicon/lm FILE)
    if "serve" not in commands() or subprocess.run(["which", "curl"], capture_output=True).returncode:
        print("skipped: no server or no curl")
        sys.exit(77)
    path = wav("in1")
    p, url = start_server("--workers", "1")
    try:
        for n, row in enumerate(SAME_OPTIONS):
            fields = list(row) if isinstance(row[0], tuple) else [row]
            c, s = cli_outcome(fields, path, n), server_outcome(url, fields, path)
            if fields[0][0] in ("lexicon", "lm") and fields[0][1].endswith((".txt", ".arpa")):
                # a file name: the CLI opens it (and fails: I/O), the server reads no files
                check(c == ("failed", "exit 4") and s[0] == "refused", f"{fields}: cli {c}, server {s}")
                continue
            check(c == s, f"{fields}: cli {c} != server {s}")
    finally:
        p.terminate()
        p.wait(timeout=30)


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


def case_openmp_wait_policy():
    # libgomp (oneDNN's threads) spins after every parallel region unless told otherwise: the command
    # runs with OMP_WAIT_POLICY=PASSIVE (one re-exec) unless the user set a policy or a spin count
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "LD_PRELOAD")}

    def spin_counts(extra):
        p = subprocess.run([BIN, "--version"], capture_output=True, timeout=60,
                           env={**env, "OMP_DISPLAY_ENV": "VERBOSE", **extra})
        check(p.returncode == 0 and p.stdout.decode().count("modelpool ") == 1, f"--version: {p}")
        return re.findall(r"GOMP_SPINCOUNT = '(\d+)'", p.stderr.decode())

    counts = spin_counts({})
    if not counts:
        print("libgomp not linked (no oneDNN): nothing spins")
        return
    # libgomp prints its settings in each process: its default spin count (300000 in GCC 12), then 0
    check(len(counts) == 2 and counts[0] != "0" and counts[1] == "0",
          f"default: want libgomp's own spin count, then 0 after the re-exec: {counts}")
    check(spin_counts({"OMP_WAIT_POLICY": "active"}) == ["30000000000"], "OMP_WAIT_POLICY=active not kept")
    check(spin_counts({"GOMP_SPINCOUNT": "1234"}) == ["1234"], "GOMP_SPINCOUNT not kept")
    # the running server's own environment
    srv = subprocess.Popen([BIN, "serve", "--port", "0", "--workers", "1"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        srv.stderr.readline()  # its first line: it is past main's first step
        with open(f"/proc/{srv.pid}/environ", "rb") as f:
            check(b"OMP_WAIT_POLICY=PASSIVE" in f.read().split(b"\0"), "serve runs without OMP_WAIT_POLICY=PASSIVE")
        with open(f"/proc/{srv.pid}/comm") as f:  # ps, top and the journal name the process by it
            name = f.read().strip()
        check(name == os.path.basename(BIN)[:15], f"process name after the re-exec: {name!r}")
    finally:
        srv.terminate()
        srv.wait(timeout=30)


CASES = {name[len("case_"):]: fn for name, fn in list(globals().items()) if name.startswith("case_")}
if sys.argv[1:] == ["--list"]:  # ctest registers one case each (tests/cli.cmake)
    print("\n".join(CASES))
    sys.exit(0)
BIN, CASE = sys.argv[1], sys.argv[2]
if CASE not in CASES:
    print(f"no such case: {CASE} (--list names them)", file=sys.stderr)
    sys.exit(2)
CASES[CASE]()
print("ok", CASE)
