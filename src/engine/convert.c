/* convert.c - mp_model_save_safetensors: a loaded model's weight file (any format the loader
 * reads) written back as model.safetensors, plus the directory's small files. The tensors come
 * from the tensor table the model keeps open (tensors.h), so what is written is what the file
 * held, not the engine's reordered or weight-normed copies: the result is a faithful HF
 * directory that transformers loads too. */
#include "kernels.h"
#include "st-write.h"
#include "tensors.h"
#include "torch-ckpt.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Small files of a model directory that travel with the weights. */
static const char *const side_files[] = {"config.json", "preprocessor_config.json", "vocab.json",
                                         "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                                         "lexicon.txt", "words.txt"};
#define SIDE_MAX ((long)64 << 20)

static mp_status copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return errno == ENOENT ? MP_OK : mp__fail(MP_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", dst);
    int fd = mkstemp(tmp);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !out) close(fd), remove(tmp);
    if (!out) {
        fclose(in);
        return mp__fail(MP_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    char buf[1 << 16];
    size_t k;
    long total = 0;
    mp_status st = MP_OK;
    while (st == MP_OK && (k = fread(buf, 1, sizeof buf, in)) > 0) {
        if ((total += (long)k) > SIDE_MAX) st = mp__fail(MP_ERR_IO, "%s: larger than 64 MB, not copied", src);
        else if (fwrite(buf, 1, k, out) != k) st = mp__fail(MP_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (st == MP_OK && ferror(in)) st = mp__fail(MP_ERR_IO, "%s: read failed", src);
    fclose(in);
    if (fclose(out) != 0 && st == MP_OK) st = mp__fail(MP_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (st == MP_OK) chmod(tmp, 0644);
    if (st == MP_OK && rename(tmp, dst) != 0) st = mp__fail(MP_ERR_IO, "%s: cannot rename: %s", tmp, strerror(errno));
    if (st != MP_OK) remove(tmp);
    return st;
}

static int parse_dtype(const char *s) {
    if (!s || !strcasecmp(s, "f32") || !strcasecmp(s, "fp32") || !strcasecmp(s, "float32")) return MP__PT_F32;
    if (!strcasecmp(s, "f16") || !strcasecmp(s, "fp16") || !strcasecmp(s, "float16")) return MP__PT_F16;
    if (!strcasecmp(s, "bf16") || !strcasecmp(s, "bfloat16")) return MP__PT_BF16;
    return -1;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp((*(const mp__tensor *const *)a)->name, (*(const mp__tensor *const *)b)->name);
}

static mp_status read_one(void *ctx, size_t i, float *dst) {
    mp__tensor_to_f32(((const mp__tensor *const *)ctx)[i], dst);
    return MP_OK;
}

/* The tensors sorted by name (as the safetensors library writes them), then the file. */
static mp_status write_weights(const mp__tensors *ts, const char *path, int dtype) {
    size_t n = ts->n;
    const mp__tensor **order = malloc((n + 1) * sizeof *order);
    mp__st_out *out = calloc(n + 1, sizeof *out);
    mp_status st = MP_OK;
    if (!order || !out) {
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    } else {
        for (size_t i = 0; i < n; i++) order[i] = &ts->t[i];
        qsort(order, n, sizeof *order, cmp_tensor);
        for (size_t i = 0; i < n; i++) {
            out[i].name = order[i]->name;
            out[i].ndim = order[i]->ndim;
            memcpy(out[i].shape, order[i]->shape, sizeof out[i].shape);
            out[i].numel = order[i]->numel;
        }
        st = mp__st_write(path, dtype, out, n, read_one, (void *)order);
    }
    free(order);
    free(out);
    return st;
}

mp_status mp_model_save_safetensors(const mp_model *m, const char *out_dir, const char *dtype) {
    if (!m || !out_dir) return mp__fail(MP_ERR_INVALID_ARG, "mp_model_save_safetensors: NULL argument");
    int dt = parse_dtype(dtype);
    if (dt < 0) return mp__fail(MP_ERR_INVALID_ARG, "mp_model_save_safetensors: dtype \"%s\": expected f32, f16 or bf16",
                                dtype);
    if (!m->weights || !m->path || !m->path[0])
        return mp__fail(MP_ERR_INVALID_ARG, "mp_model_save_safetensors: the model has no weight files (random weights)");
    /* Weights released at load (quant.c: int8; prepack.c: big fp32 models) are read again from a
     * mapped file, but a file read into memory (use_mmap = 0) gave those pages back as zeros. */
    if (!m->weights->map && (m->quant || (m->packed && m->packed->replaced)))
        return mp__fail(MP_ERR_INVALID_ARG, "mp_model_save_safetensors: %s: the model's fp32 weights were released at "
                                            "load (int8, or packed fp32) and its file was not mapped; load it with "
                                            "use_mmap = 1 (the default) to convert it", m->path);
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return mp__fail(MP_ERR_IO, "%s: cannot create: %s", out_dir, strerror(errno));
    char a[PATH_MAX], b[PATH_MAX];
    int same = realpath(m->path, a) && realpath(out_dir, b) && !strcmp(a, b);
    char *path = mp__path_join(out_dir, "model.safetensors");
    if (!path) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", out_dir);
    mp_status st = write_weights(m->weights, path, dt);
    free(path);
    for (size_t i = 0; st == MP_OK && !same && i < sizeof side_files / sizeof side_files[0]; i++) {
        char *src = mp__path_join(m->path, side_files[i]), *dst = mp__path_join(out_dir, side_files[i]);
        st = src && dst ? copy_file(src, dst) : mp__fail(MP_ERR_NOMEM, "%s: out of memory", out_dir);
        free(src), free(dst);
    }
    return st;
}
