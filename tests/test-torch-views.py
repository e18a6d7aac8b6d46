#!/usr/bin/python3
"""test-torch-views.py DUMP - the pytorch_model.bin reader against torch.load itself.

Saves state dicts of awkward views with Debian's torch (permuted, sliced with steps, stride-0
expanded, offsets into a shared storage, transposed bf16, strided fp16, fp16 parameters, 0-d and
empty tensors), in the ZIP and the legacy format, and requires tests/torch-dump (the C reader) to
print exactly the values and shapes torch has. Exit 77 (skipped) without torch."""
import collections
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    sys.exit(77)


def views():
    torch.manual_seed(0)
    base = torch.randn(4, 5, 6)
    sd = collections.OrderedDict()
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["perm"] = base.permute(2, 0, 1)
    sd["slice"] = base[1:3, ::2, 1:5]
    sd["expand"] = torch.randn(1, 3).expand(4, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(3, 2).half())
    sd["bf"] = torch.randn(2, 3).bfloat16().t()
    sd["narrow"] = base.view(-1)[7:19]
    sd["same"] = sd["perm"]
    sd["f16slice"] = torch.randn(10).half()[3:8:2]
    return sd


def main():
    dump = sys.argv[1]
    sd = views()
    with tempfile.TemporaryDirectory() as tmp:
        for legacy in (False, True):
            path = os.path.join(tmp, "legacy.bin" if legacy else "zip.bin")
            torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
            out = subprocess.run([dump, path], capture_output=True, text=True, check=False)
            lines = out.stdout.strip().split("\n")
            if out.returncode != 0 or any(l.startswith("ERR") for l in lines):
                print(out.stdout, out.stderr)
                return 1
            got = collections.OrderedDict()
            for line in lines:
                name, rest = line.split(" ", 1)
                head, vals = rest.split(":")
                dims = [int(x) for x in head.split()][1:]
                got[name] = (dims, [float(x) for x in vals.split()])
            if list(got) != list(sd):
                print("names", list(got), "want", list(sd))
                return 1
            for k, t in sd.items():
                dims, vals = got[k]
                want = t.detach().float().reshape(-1)
                if dims != list(t.shape) or not torch.equal(torch.tensor(vals, dtype=torch.float32), want):
                    print(f"{'legacy' if legacy else 'zip'}: {k}: got {dims} {vals[:6]}, want {list(t.shape)} "
                          f"{want[:6].tolist()}")
                    return 1
            print(f"{'legacy' if legacy else 'zip'}: {len(sd)} tensors identical to torch.load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
