#!/usr/bin/python3
"""Train the small wav2vec2-CTC digits model on the synthesized corpus (synth.py).

Resumable: a checkpoint (model, EMA, optimizer, data position, RNG) is written to
CKPT_DIR/last.pt every --ckpt-every-min minutes and on exit; a restart with the same
arguments continues from it. Every --export-every-min minutes the EMA weights are scored on
the dev set (held-out voices, GSM + AMR), and when they beat the best so far they are exported
as a HuggingFace directory to --export (so a run cut short still leaves a usable model).

  nice -n 10 /usr/bin/python3 tools/train/train.py --steps 6000 --export models/digits
"""
import argparse
import json
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402

SR = 16000


class Corpus:
    """Clips stored by synth.py: int16 16 kHz shards + index.jsonl, memory-mapped."""

    def __init__(self, d, conds=None, max_s=14.0):
        self.d = d
        self.rows = []
        with open(os.path.join(d, "index.jsonl")) as f:
            for l in f:
                r = json.loads(l)
                if conds and r["cond"] not in conds:
                    continue
                if r["n"] > max_s * SR:
                    continue
                r["ids"] = common.encode_text(r["text"])
                # CTC needs at least one frame per label (+1 per repeated pair); 320 samples/frame.
                if r["n"] // 320 - 1 < 2 * len(r["ids"]):
                    continue
                self.rows.append(r)
        self.maps = {}

    def audio(self, r):
        s = r["shard"]
        if s not in self.maps:
            self.maps[s] = np.memmap(os.path.join(self.d, "shard-%03d.raw" % s), dtype=np.int16, mode="r")
        x = self.maps[s][r["off"]:r["off"] + r["n"]].astype(np.float32)
        # HF Wav2Vec2FeatureExtractor do_normalize: zero mean, unit variance, eps 1e-7.
        return (x - x.mean()) / np.sqrt(x.var() + 1e-7)

    def hours(self):
        return sum(r["n"] for r in self.rows) / SR / 3600


class Mixture:
    """Several corpora, each with a weight: per epoch every row of a corpus appears int(w) times, plus once
    more with probability frac(w) (so w=0.5 takes a fresh random half each epoch)."""

    def __init__(self, specs):
        self.parts = []
        for spec in specs:
            d, _, w = spec.partition(":")
            c = Corpus(d)
            for r in c.rows:
                r["_c"] = len(self.parts)
            self.parts.append((c, float(w) if w else 1.0))

    def audio(self, r):
        return self.parts[r["_c"]][0].audio(r)

    def epoch_rows(self, rng):
        out = []
        for c, w in self.parts:
            for r in c.rows:
                out += [r] * (int(w) + (rng.random() < w - int(w)))
        return out

    def describe(self):
        return ", ".join("%s x%g: %d clips %.2f h" % (c.d, w, len(c.rows), c.hours()) for c, w in self.parts)


def make_batches(rows, max_samples, rng):
    """Length-bucketed batches: sort by length with jitter, cut so that padded size
    (count x longest) stays under max_samples, then shuffle batch order."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["n"] * rng.uniform(0.95, 1.05))
    batches, cur, longest = [], [], 0
    for i in order:
        n = rows[i]["n"]
        if cur and max(longest, n) * (len(cur) + 1) > max_samples:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def collate(corpus, rows, idxs, torch):
    xs = [corpus.audio(rows[i]) for i in idxs]
    n = max(len(x) for x in xs)
    wav = torch.zeros(len(xs), n)
    for k, x in enumerate(xs):
        wav[k, :len(x)] = torch.from_numpy(x)
    lens = torch.tensor([len(x) for x in xs])
    tg = [rows[i]["ids"] for i in idxs]
    targets = torch.tensor([t for ts in tg for t in ts], dtype=torch.long)
    tlens = torch.tensor([len(t) for t in tg], dtype=torch.long)
    return wav, lens, targets, tlens


def spec_mask(feats, flens, rng, torch, p_time=0.025, len_time=6, n_chan=2, len_chan=24):
    """SpecAugment-like masking on the conv features [B, T, C]: time spans of <= len_time
    frames (20 ms each) start with probability p_time per frame (~8% of frames masked), plus
    n_chan channel bands. A digit word lasts ~15-30 frames, so spans stay shorter than words."""
    B, T, C = feats.shape
    m = torch.ones(B, T, 1)
    for b in range(B):
        L = int(flens[b])
        for t in range(L):
            if rng.random() < p_time:
                m[b, t:t + rng.randint(2, len_time)] = 0
    cm = torch.ones(B, 1, C)
    for b in range(B):
        for _ in range(rng.randint(0, n_chan)):
            w = rng.randint(4, len_chan)
            c0 = rng.randrange(C - w)
            cm[b, :, c0:c0 + w] = 0
    return feats * m * cm


def score(model, corpus, torch, limit=None):
    """Greedy WER (%) over corpus rows (one clip at a time, no padding, like the engine)."""
    model.eval()
    e = n = 0
    with torch.no_grad():
        for r in corpus.rows[:limit]:
            x = torch.from_numpy(corpus.audio(r))[None]
            logits, _ = model(x)
            hyp = common.greedy_decode(logits[0].argmax(-1).tolist())
            a, b = common.wer_counts(r["text"], hyp)
            e, n = e + a, n + b
    model.train()
    return 100.0 * e / max(1, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", default=None,
                    help="corpus directory, optionally DIR:WEIGHT (rows per epoch x WEIGHT); repeat to mix corpora "
                         "(default WORK/train)")
    ap.add_argument("--init", default=None, help="start from this exported HF directory's weights (fine-tuning) "
                    "instead of a random initialisation, when there is no checkpoint to resume")
    ap.add_argument("--dev", default=os.path.join(common.WORK, "dev"))
    ap.add_argument("--ckpt-dir", default=os.path.join(common.WORK, "ckpt"))
    ap.add_argument("--export", default=None, help="HF directory to (re)write with the best model")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch-seconds", type=float, default=50.0, help="padded audio seconds per batch")
    ap.add_argument("--lr", type=float, default=1.2e-3)
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--ckpt-every-min", type=float, default=5.0)
    ap.add_argument("--export-every-min", type=float, default=10.0)
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="wall-time cap: the LR schedule ends and training stops at this many minutes")
    ap.add_argument("--dev-limit", type=int, default=120)
    ap.add_argument("--dev-conds", default="gsm,amr", help="dev conditions (comma-separated) that select the model")
    ap.add_argument("--cycle", type=int, default=0,
                    help="LR cycle number; resuming a checkpoint from an earlier cycle starts a new warm-up + "
                         "cosine cycle (over --steps more steps / --max-minutes more minutes) at the resumed step")
    a = ap.parse_args()

    torch = common.setup_torch(a.threads)
    import torch.nn.functional as F
    import export_hf

    torch.manual_seed(a.seed)
    os.makedirs(a.ckpt_dir, exist_ok=True)
    corpus = Mixture(a.data or [os.path.join(common.WORK, "train")])
    dev = Corpus(a.dev, conds=set(a.dev_conds.split(","))) if os.path.exists(os.path.join(a.dev, "index.jsonl")) else None
    print("train: %s; dev: %s clips" % (corpus.describe(), len(dev.rows) if dev else 0), flush=True)

    def epoch_batches(epoch):
        r = random.Random(a.seed * 1000 + epoch)
        rows_ = corpus.epoch_rows(r)
        return rows_, make_batches(rows_, max_samples, r)

    model = common.build_model()
    if a.init and not os.path.exists(os.path.join(a.ckpt_dir, "last.pt")):
        model.load_state_dict(export_hf.load_hf_dir(a.init).state_dict())
        print("initialised from %s" % a.init, flush=True)
    model.train()
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in n else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-8)

    def progress():
        # Fraction of the current LR cycle done: by steps, or by wall time when --max-minutes caps
        # the run (whichever is further), so a run on a busy machine still ends with a decayed LR.
        f = (st["step"] - st["cycle_step0"]) / a.steps
        if a.max_minutes:
            f = max(f, (st["wall_s"] - st["cycle_wall0"]) / (a.max_minutes * 60))
        return min(1.0, f)

    def lr_at(step):
        # Linear warm-up over --warmup steps, then cosine decay to 5% of peak at progress 1.
        step -= st["cycle_step0"]
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        f0 = a.warmup / a.steps
        f = min(1.0, max(0.0, (progress() - f0) / max(1e-9, 1 - f0)))
        return a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * f)))

    st = dict(step=0, epoch=0, pos=0, best=1e9, best_step=-1, train_s=0.0, wall_s=0.0, py_rng=None,
              cycle=a.cycle, cycle_step0=0, cycle_wall0=0.0)
    ck_path = os.path.join(a.ckpt_dir, "last.pt")
    if os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location="cpu")
        ck["state"].setdefault("wall_s", ck["state"]["train_s"])
        model.load_state_dict(ck["model"])
        ema = ck["ema"]
        opt.load_state_dict(ck["opt"])
        st = ck["state"]
        for k, v in (("cycle", 0), ("cycle_step0", 0), ("cycle_wall0", 0.0)):
            st.setdefault(k, v)
        torch.set_rng_state(ck["torch_rng"])
        print("resumed at step %d (epoch %d, batch %d, best dev WER %.2f)" %
              (st["step"], st["epoch"], st["pos"], st["best"]), flush=True)
        if st["cycle"] < a.cycle:
            # Warm restart: a new LR cycle from here. The best model so far is re-scored with this
            # run's --dev-limit, so only a model that beats it on the same dev rows replaces it.
            st.update(cycle=a.cycle, cycle_step0=st["step"], cycle_wall0=st["wall_s"])
            bp = os.path.join(a.ckpt_dir, "best.pt")
            if dev and os.path.exists(bp):
                m = common.build_model()
                m.load_state_dict(torch.load(bp, map_location="cpu")["model"])
                st["best"] = score(m, dev, torch, a.dev_limit)
            print("LR cycle %d starts at step %d; best so far re-scored: dev WER %.2f%%" %
                  (a.cycle, st["step"], st["best"]), flush=True)
    rng = random.Random()
    if st.get("py_rng"):
        rng.setstate(st["py_rng"])
    else:
        rng.seed(a.seed)
    with open(os.path.join(a.ckpt_dir, "settings.json"), "w") as f:
        json.dump(dict(args=vars(a), model=common.MODEL_CFG, vocab=common.VOCAB, lexicon=common.LEXICON,
                       train=corpus.describe()), f, indent=1)

    def save():
        st["py_rng"] = rng.getstate()
        tmp = ck_path + ".tmp"
        torch.save(dict(model=model.state_dict(), ema=ema, opt=opt.state_dict(), state=st,
                        torch_rng=torch.get_rng_state(), cfg=common.MODEL_CFG), tmp)
        os.replace(tmp, ck_path)

    def ema_model():
        m = common.build_model()
        m.load_state_dict(ema)
        return m

    def keep_best(sd, wer, tag):
        st["best"], st["best_step"] = wer, st["step"]
        torch.save(dict(model=sd, cfg=common.MODEL_CFG, step=st["step"], dev_wer=wer),
                   os.path.join(a.ckpt_dir, "best.pt"))
        if a.export:
            export_hf.export(sd, common.MODEL_CFG, a.export,
                             extra_meta={"format": "pt", "step": tag, "dev_wer": "%.2f" % wer})

    def maybe_export(final=False):
        if not dev:
            return
        m = ema_model()
        w = score(m, dev, torch, a.dev_limit)
        wr = score(model, dev, torch, a.dev_limit)
        use_raw = wr < w
        best_now = min(w, wr)
        msg = "dev greedy WER (%s, held-out voices): ema %.2f%%, raw %.2f%% at step %d" % (a.dev_conds, w, wr, st["step"])
        if best_now < st["best"]:
            keep_best((model if use_raw else m).state_dict(), best_now, str(st["step"]))
            if a.export:
                msg += " -> exported to %s" % a.export
        print(msg, flush=True)
        with open(os.path.join(a.ckpt_dir, "dev.jsonl"), "a") as f:
            f.write(json.dumps(dict(step=st["step"], ema=w, raw=wr, train_s=st["train_s"], final=final)) + "\n")

    if a.init and dev and not os.path.exists(ck_path):
        # Fine-tuning: the --init weights are the first candidate, so a run that only loses on dev
        # leaves them as the best model (and as --export) instead of exporting its first evaluation.
        w0 = score(model, dev, torch, a.dev_limit)
        keep_best(model.state_dict(), w0, "init")  # written out at once, before any step
        print("--init weights: dev greedy WER %.2f%% (the mark to beat)" % w0, flush=True)
        with open(os.path.join(a.ckpt_dir, "dev.jsonl"), "a") as f:
            f.write(json.dumps(dict(step=0, init=w0, train_s=0.0, final=False)) + "\n")

    max_samples = int(a.batch_seconds * SR)
    rows, batches = epoch_batches(st["epoch"])
    t_ck = t_ex = t_start = time.time()
    log = open(os.path.join(a.ckpt_dir, "train.jsonl"), "a")
    loss_avg, t_avg = None, None
    t_wall = time.time()
    while progress() < 1.0:
        if st["pos"] >= len(batches):
            st["epoch"] += 1
            st["pos"] = 0
            rows, batches = epoch_batches(st["epoch"])
        idxs = batches[st["pos"]]
        t0 = time.time()
        wav, lens, targets, tlens = collate(corpus, rows, idxs, torch)
        feats, flens = model.feature_extractor(wav, lens)
        feats = spec_mask(feats, flens, rng, torch)
        hid = model.encoder(feats, flens)
        logits = model.aux(hid)
        lp = F.log_softmax(logits, dim=-1).transpose(0, 1)          # [T, B, V] for ctc_loss
        loss = F.ctc_loss(lp, targets, flens, tlens, blank=common.BLANK, reduction="mean", zero_infinity=True)
        for g in opt.param_groups:
            g["lr"] = lr_at(st["step"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        if torch.isfinite(gn):
            opt.step()
        # EMA with the usual warm-up (decay grows from 0.1 to --ema) so early exports are not
        # dominated by the random initialisation.
        d = min(a.ema, (1 + st["step"]) / (10 + st["step"]))
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(d).add_(v, alpha=1 - d)
                else:
                    ema[k].copy_(v)
        dt = time.time() - t0
        st["train_s"] += dt
        st["wall_s"] += time.time() - t_wall       # includes dev scoring and checkpoints
        t_wall = time.time()
        st["step"] += 1
        st["pos"] += 1
        lv = float(loss)
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        t_avg = dt if t_avg is None else 0.95 * t_avg + 0.05 * dt
        if st["step"] % 25 == 0 or st["step"] <= 5:
            audio_s = float(lens.sum()) / SR
            print("step %d ep %d loss %.3f (avg %.3f) gn %.2f lr %.2e %.2fs/step (%.0f audio-s) eta %.0f min" %
                  (st["step"], st["epoch"], lv, loss_avg, float(gn), lr_at(st["step"]), t_avg, audio_s,
                   t_avg * (1 - progress()) * a.steps / 60 if not a.max_minutes else (1 - progress()) * a.max_minutes), flush=True)
            log.write(json.dumps(dict(step=st["step"], loss=lv, loss_avg=loss_avg, gn=float(gn),
                                      lr=lr_at(st["step"]), dt=dt, t=time.time())) + "\n")
            log.flush()
        now = time.time()
        if now - t_ck > a.ckpt_every_min * 60:
            save()
            t_ck = now
        if now - t_ex > a.export_every_min * 60:
            maybe_export()
            save()
            t_ex = time.time()
    save()
    maybe_export(final=True)
    save()
    print("done: step %d, best dev WER %.2f%% at step %d" % (st["step"], st["best"], st["best_step"]), flush=True)


if __name__ == "__main__":
    main()
