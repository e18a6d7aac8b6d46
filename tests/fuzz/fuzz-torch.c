/* fuzz-torch.c - libFuzzer target over the pytorch_model.bin reader: the ZIP directory
 * (torch-zip.c), the state-dict pickle interpreter (pickle.c), the legacy stream and the tensor
 * checks (torch-ckpt.c), then every accepted tensor gathered to fp32 (mp__pt_read_f32), which
 * must stay inside the input for any strides and offsets the reader let through.
 * Build: CC=clang cmake -DMP_BUILD_FUZZ=ON -DMP_SANITIZE_ADDRESS=ON ...;
 * run: fuzz-torch -dict=tests/fuzz/torch.dict -max_total_time=30 CORPUS (seeds: tests/data/torch) */
#include "engine/torch-ckpt.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mp__pt_file f;
    if (mp__pt_open("fuzz.bin", data, size, &f) == MP_OK) {
        volatile float sink = 0;
        size_t budget = (size_t)1 << 22; /* elements gathered per input: a view may repeat a storage */
        for (size_t i = 0; i < f.n; i++) {
            const mp__pt_tensor *t = &f.t[i];
            if (t->numel > budget) continue;
            budget -= t->numel;
            float *dst = malloc((t->numel ? t->numel : 1) * sizeof *dst);
            if (!dst) continue;
            if (mp__pt_read_f32("fuzz.bin", t, dst) == MP_OK && t->numel) sink += dst[t->numel - 1];
            free(dst);
        }
        (void)sink;
    }
    mp__pt_close(&f);
    return 0;
}
