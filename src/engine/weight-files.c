/* weight-files.c - which file of a model directory holds the weights, as HuggingFace's
 * from_pretrained picks it, and sharded checkpoints.
 *
 * Order: model.safetensors, model.safetensors.index.json, pytorch_model.bin,
 * pytorch_model.bin.index.json. An index is {"metadata": {...}, "weight_map": {tensor: file}};
 * each shard is opened with its own reader and the tables are merged into one whose entries
 * point into the shards' tables (which stay open as the merged table's storage), so weights.c
 * sees one table whatever the layout. Shard names must be plain file names in the directory
 * (no '/'), every tensor the index lists must be in the shard it names, and no tensor may be
 * in two shards.
 */
#include "tensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SHARDS 4096

typedef struct shards {
    mp__tensors **t;
    size_t n;
} shards;

static void shards_free(void *p) {
    shards *s = p;
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) mp__tensors_free(s->t[i]);
    free(s->t);
    free(s);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* The distinct shard files of an index's weight_map, in order of first appearance. */
static mp_status shard_names(const char *index, const json_t *wm, const char ***names, size_t *n) {
    *names = NULL;
    *n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        if (!json_is_string(v))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: weight_map: %s: expected a file name, got a %s", index, key,
                            mp__json_kind(v));
        const char *f = json_string_value(v);
        if (!*f || strchr(f, '/') || !strcmp(f, ".") || !strcmp(f, ".."))
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: weight_map: %s: \"%s\" is not a file name in the directory",
                            index, key, f);
        size_t i = 0;
        while (i < *n && strcmp((*names)[i], f) != 0) i++;
        if (i < *n) continue;
        if (*n == MAX_SHARDS) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: more than %d shards", index, MAX_SHARDS);
        const char **g = realloc((void *)*names, (*n + 1) * sizeof *g);
        if (!g) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", index);
        *names = g;
        g[(*n)++] = f;
    }
    if (!*n) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: weight_map is empty", index);
    return MP_OK;
}

/* Open every shard into s. */
static mp_status open_shards(const char *dir, const char *index, const char **names, size_t n, int use_mmap,
                             shards *s) {
    s->t = calloc(n, sizeof *s->t);
    if (!s->t) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", index);
    for (size_t i = 0; i < n; i++) {
        char *p = mp__path_join(dir, names[i]);
        if (!p) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", index);
        mp_status st;
        if (!exists(p)) st = mp__fail(MP_ERR_IO, "%s: shard %s listed in %s is missing", p, names[i], index);
        else if (ends_with(names[i], ".safetensors")) st = mp__safetensors_open(p, use_mmap, &s->t[i]);
        else st = mp__torch_open(p, use_mmap, &s->t[i]);
        free(p);
        if (st != MP_OK) return st;
        s->n++;
    }
    return MP_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* One table over all shards; checks the index against what the shards hold. */
static mp_status merge(const char *index, const json_t *wm, shards *s, const char **names, mp__tensors *ts) {
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++) total += s->t[i]->n;
    ts->t = calloc(total + 1, sizeof *ts->t);
    if (!ts->t) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", index);
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->t[i]->n; j++) {
            const mp__tensor *t = &s->t[i]->t[j];
            const json_t *where = json_object_get(wm, t->name);
            if (where && strcmp(json_string_value(where), names[i]) != 0)
                return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s is in %s, but the index says %s", index, t->name,
                                names[i], json_string_value(where));
            ts->t[ts->n++] = *t;
        }
    }
    /* Sorted names: duplicates are neighbours, and each index entry is a binary search (a
     * hostile index may list millions of names). */
    const char **names_sorted = malloc((ts->n + 1) * sizeof *names_sorted);
    if (!names_sorted) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", index);
    for (size_t i = 0; i < ts->n; i++) names_sorted[i] = ts->t[i].name;
    qsort(names_sorted, ts->n, sizeof *names_sorted, cmp_str);
    mp_status st = MP_OK;
    for (size_t i = 1; st == MP_OK && i < ts->n; i++)
        if (!strcmp(names_sorted[i - 1], names_sorted[i]))
            st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s is in two shards", index, names_sorted[i]);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)wm, key, v) {
        if (st != MP_OK) break;
        if (!bsearch(&key, names_sorted, ts->n, sizeof *names_sorted, cmp_str))
            st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: the index says %s, which does not have it", index, key,
                          json_string_value(v));
    }
    free(names_sorted);
    return st;
}

static mp_status open_index(const char *dir, const char *index, int use_mmap, mp__tensors **out) {
    json_t *root = NULL;
    mp_status st = mp__json_load(index, 0, &root);
    if (st != MP_OK) return st;
    const json_t *wm = json_object_get(root, "weight_map");
    const char **names = NULL;
    size_t n = 0;
    mp__tensors *ts = mp__tensors_new(index);
    shards *s = calloc(1, sizeof *s);
    if (!ts || !s) {
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", index);
    } else if (!json_is_object(wm)) {
        st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: weight_map missing or not an object", index);
    } else {
        ts->impl = s;
        ts->impl_free = shards_free;
        s = NULL;
        shards *sh = ts->impl;
        if ((st = shard_names(index, wm, &names, &n)) == MP_OK &&
            (st = open_shards(dir, index, names, n, use_mmap, sh)) == MP_OK &&
            (st = merge(index, wm, sh, names, ts)) == MP_OK) {
            ts->map = sh->t[0]->map; /* "memory-mapped" or not, for the log */
            ts->map_size = sh->t[0]->map_size;
            snprintf(ts->format, sizeof ts->format, "%.24s, %zu shards",
                     sh->t[0]->format[0] ? sh->t[0]->format : "safetensors", n);
        }
    }
    free((void *)names);
    free(s);
    json_decref(root);
    if (st != MP_OK) {
        mp__tensors_free(ts);
        return st;
    }
    *out = ts;
    return MP_OK;
}

mp_status mp__weights_open(const char *dir, int use_mmap, mp__tensors **out) {
    static const char *const files[4] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                         "pytorch_model.bin.index.json"};
    *out = NULL;
    for (int i = 0; i < 4; i++) {
        char *p = mp__path_join(dir, files[i]);
        if (!p) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", dir);
        if (!exists(p)) {
            free(p);
            continue;
        }
        mp_status st = i == 0 ? mp__safetensors_open(p, use_mmap, out)
                       : i == 2 ? mp__torch_open(p, use_mmap, out)
                                : open_index(dir, p, use_mmap, out);
        if (st == MP_OK && !(*out)->format[0]) snprintf((*out)->format, sizeof (*out)->format, "safetensors");
        free(p);
        return st;
    }
    char *tf = mp__path_join(dir, "tf_model.h5"), *flax = mp__path_join(dir, "flax_model.msgpack");
    const char *other = tf && exists(tf) ? " (tf_model.h5 is TensorFlow's format, not supported)"
                        : flax && exists(flax) ? " (flax_model.msgpack is Flax's format, not supported)"
                                               : "";
    mp_status st = mp__fail(MP_ERR_IO,
                            "%s/model.safetensors: not found, nor model.safetensors.index.json, pytorch_model.bin or "
                            "pytorch_model.bin.index.json%s",
                            dir, other);
    free(tf), free(flax);
    return st;
}
