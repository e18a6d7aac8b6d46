/*
 * torch-ckpt.c - a torch.save checkpoint (pytorch_model.bin) as a list of tensors over its bytes.
 *
 * DESIGN
 *   Two layouts. torch >= 1.6 writes a ZIP archive (torch-zip.c): <prefix>/data.pkl is the
 *   state-dict pickle (pickle.c), <prefix>/data/<key> the raw little-endian bytes of each
 *   storage, <prefix>/byteorder (newer files) "little" or "big", <prefix>/version the format
 *   version. The pre-1.6 layout (torch.save(..., _use_new_zipfile_serialization=False)) is a
 *   stream: five pickles (magic number, protocol version, system info, the state dict, the list
 *   of storage keys) followed by each storage in key-list order as an 8-byte element count and
 *   the raw bytes. Both are read here; in the legacy stream storages follow each other without
 *   padding, so their fp32 tensors are usually copied rather than used in place.
 *
 *   A tensor is a view of a storage: element [i0, i1, ...] is storage[offset + sum(i_k *
 *   stride_k)]. Every view is checked to lie inside its storage and every storage inside the
 *   file before the caller sees any of them. Several tensors may share one storage (tied or
 *   sliced weights); that is fine since storages are read-only here. A view that is row-major
 *   with no gaps ("contiguous") is a plain byte range; others are gathered by mp__pt_read_f32.
 */
#include "torch-ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Legacy stream: the first pickle is the magic number 0x1950a86a20f9469cfc6c as a LONG1. */
static const uint8_t legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                       0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
#define LEGACY_PROTOCOL 1001

void mp__pt_close(mp__pt_file *f) {
    if (!f) return;
    free(f->t);
    mp__pickle_free(&f->dict);
    mp__zip_close(&f->zip);
    memset(f, 0, sizeof *f);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const mp__pt_tensor *const *)a)->name, (*(const mp__pt_tensor *const *)b)->name);
}

/* Check record r against a storage of `bytes` bytes at `data`, and fill tensor t. */
static mp_status make_tensor(const char *file, const mp__pt_record *r, const uint8_t *data, uint64_t bytes,
                             mp__pt_tensor *t) {
    size_t es = mp__pt_dtype_size(r->dtype);
    if (r->storage_numel > UINT64_MAX / es || r->storage_numel * es != bytes)
        return mp__fail(MP_ERR_MODEL_FORMAT,
                        "%s: tensor %s: storage %s holds %llu bytes, but its header says %llu elements of %zu bytes",
                        file, r->name, r->key, (unsigned long long)bytes, (unsigned long long)r->storage_numel, es);
    memset(t, 0, sizeof *t);
    t->name = r->name;
    t->dtype = r->dtype;
    t->ndim = r->ndim;
    uint64_t numel = 1, last = r->offset;
    int overflow = 0;
    for (int i = 0; i < r->ndim; i++) {
        t->shape[i] = r->shape[i];
        t->stride[i] = r->stride[i];
        uint64_t d = (uint64_t)r->shape[i], s = (uint64_t)r->stride[i];
        if (d && numel > UINT64_MAX / d) overflow = 1;
        numel *= d;
        if (d && s && d - 1 > (UINT64_MAX - last) / s) overflow = 1;
        else if (d) last += (d - 1) * s;
    }
    if (overflow || numel > SIZE_MAX / 8)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: size or stride overflows", file, r->name);
    if (numel && last >= r->storage_numel)
        return mp__fail(MP_ERR_MODEL_FORMAT,
                        "%s: tensor %s: size and stride reach element %llu of storage %s, which has %llu elements",
                        file, r->name, (unsigned long long)last, r->key, (unsigned long long)r->storage_numel);
    if (!numel && r->offset > r->storage_numel)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: storage offset %llu past storage %s", file, r->name,
                        (unsigned long long)r->offset, r->key);
    t->numel = (size_t)numel;
    t->data = data + (numel ? r->offset * es : 0);
    /* Row-major without gaps; dimensions of size 1 may carry any stride. */
    int contig = 1;
    int64_t want = 1;
    for (int i = r->ndim - 1; i >= 0; i--) {
        if (r->shape[i] != 1 && r->stride[i] != want) contig = 0;
        want *= r->shape[i];
    }
    t->contiguous = contig || numel == 0;
    return MP_OK;
}

/* Records sorted by storage key: a hostile pickle may hold millions of records, so nothing here
 * pairs them up quadratically. */
typedef struct keyed {
    const char *key;
    size_t i;          /* record index */
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    return strcmp(((const keyed *)a)->key, ((const keyed *)b)->key);
}

static keyed *by_key(const mp__pt_dict *d) {
    keyed *ix = malloc((d->n + 1) * sizeof *ix);
    if (!ix) return NULL;
    for (size_t i = 0; i < d->n; i++) ix[i] = (keyed){d->r[i].key, i};
    qsort(ix, d->n, sizeof *ix, cmp_keyed);
    return ix;
}

/* First position in ix (n entries, sorted) with key k, or n. */
static size_t find_key(const keyed *ix, size_t n, const char *k) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix[mid].key, k) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && !strcmp(ix[lo].key, k) ? lo : n;
}

/* Names unique; storages used by more than one tensor marked shared. */
static mp_status finish(const char *file, mp__pt_file *f) {
    mp__pt_tensor **byname = malloc((f->n + 1) * sizeof *byname);
    if (!byname) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    for (size_t i = 0; i < f->n; i++) byname[i] = &f->t[i];
    qsort(byname, f->n, sizeof *byname, cmp_name);
    for (size_t i = 1; i < f->n; i++) {
        if (!strcmp(byname[i - 1]->name, byname[i]->name)) {
            mp_status st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s appears twice", file, byname[i]->name);
            free(byname);
            return st;
        }
    }
    free(byname);
    keyed *ix = by_key(&f->dict);
    if (!ix) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    for (size_t i = 1; i < f->dict.n; i++)
        if (!strcmp(ix[i - 1].key, ix[i].key)) f->t[ix[i - 1].i].shared = f->t[ix[i].i].shared = 1;
    free(ix);
    return MP_OK;
}

/* ---- ZIP (torch >= 1.6) ------------------------------------------------------------------------ */

/* The one "<prefix>/data.pkl" entry at depth 1 gives the prefix every other name starts with. */
static mp_status find_prefix(const char *file, const mp__zip *z, const mp__zip_entry **pkl, size_t *plen) {
    *pkl = NULL;
    for (size_t i = 0; i < z->n; i++) {
        const mp__zip_entry *e = &z->e[i];
        if (e->name_len < 10 || memcmp(e->name + e->name_len - 9, "/data.pkl", 9) != 0) continue;
        if (memchr(e->name, '/', e->name_len - 9)) continue;
        if (*pkl) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: more than one */data.pkl in the archive", file);
        *pkl = e;
        *plen = e->name_len - 8; /* "prefix/" */
    }
    if (!*pkl) {
        int ts = 0;
        for (size_t i = 0; i < z->n; i++)
            if (z->e[i].name_len > 14 && !memcmp(z->e[i].name + z->e[i].name_len - 14, "/constants.pkl", 14)) ts = 1;
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: a ZIP archive without <name>/data.pkl: not a torch.save checkpoint%s",
                        file, ts ? " (this looks like a TorchScript archive; save the state_dict() instead)" : "");
    }
    return MP_OK;
}

/* An optional small text entry <prefix><name>, CRC-checked; *out (NUL-terminated, at most 15
 * chars, trailing newline dropped) is "" when absent. */
static mp_status small_entry(const char *file, const mp__zip *z, const char *prefix, size_t plen, const char *name,
                             char out[16]) {
    char full[512];
    out[0] = 0;
    if (plen + strlen(name) >= sizeof full) return MP_OK;
    memcpy(full, prefix, plen);
    strcpy(full + plen, name);
    const mp__zip_entry *e = mp__zip_find(z, full, strlen(full));
    if (!e) return MP_OK;
    mp_status st = mp__zip_check_crc(file, z, e);
    if (st != MP_OK) return st;
    if (e->size > 15) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: entry %s: %llu bytes, expected a short word", file,
                                      full, (unsigned long long)e->size);
    memcpy(out, z->base + e->offset, (size_t)e->size);
    out[e->size] = 0;
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = 0;
    return MP_OK;
}

static mp_status open_zip(const char *file, const uint8_t *base, size_t size, int fd, mp__pt_file *f) {
    mp_status st = mp__zip_open_fd(file, base, size, fd, &f->zip);
    if (st != MP_OK) return st;
    const mp__zip_entry *pkl;
    size_t plen = 0;
    if ((st = find_prefix(file, &f->zip, &pkl, &plen)) != MP_OK) return st;
    const char *prefix = pkl->name;
    char order[16], version[16];
    if ((st = small_entry(file, &f->zip, prefix, plen, "byteorder", order)) != MP_OK) return st;
    if (order[0] && strcmp(order, "little") != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: byteorder \"%s\": only little-endian checkpoints are supported", file,
                        order);
    if ((st = small_entry(file, &f->zip, prefix, plen, "version", version)) != MP_OK) return st;
    mp__log(MP_LOG_DEBUG, "%s: torch.save ZIP archive, format version %s", file, version[0] ? version : "?");
    if ((st = mp__zip_check_crc(file, &f->zip, pkl)) != MP_OK) return st;

    char label[600];
    snprintf(label, sizeof label, "%s: %.*s", file, (int)(pkl->name_len > 200 ? 200 : pkl->name_len), pkl->name);
    if ((st = mp__pickle_state_dict(label, base + pkl->offset, (size_t)pkl->size, 0, NULL, &f->dict)) != MP_OK)
        return st;
    f->t = calloc(f->dict.n + 1, sizeof *f->t);
    if (!f->t) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    char name[600];
    for (size_t i = 0; i < f->dict.n; i++) {
        const mp__pt_record *r = &f->dict.r[i];
        int n = snprintf(name, sizeof name, "%.*sdata/%s", (int)plen, prefix, r->key);
        const mp__zip_entry *e = n > 0 && (size_t)n < sizeof name ? mp__zip_find(&f->zip, name, (size_t)n) : NULL;
        if (!e)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: its storage %s is missing (no entry %s)", file,
                            r->name, r->key, name);
        if ((st = make_tensor(file, r, base + e->offset, e->size, &f->t[i])) != MP_OK) return st;
        f->n++;
    }
    for (size_t i = 0; i < f->zip.n; i++) {
        const mp__zip_entry *e = &f->zip.e[i];
        if (e->name_len > plen + 5 && !memcmp(e->name + plen, "data/", 5)) {
            f->n_storages++;
            f->n_aligned64 += (e->offset & 63) == 0;
        }
    }
    return MP_OK;
}

/* ---- legacy stream (torch < 1.6, or _use_new_zipfile_serialization=False) ----------------------- */

static mp_status legacy_header(const char *file, const uint8_t *base, size_t size, size_t *pos) {
    mp__pickle_value v;
    size_t used;
    *pos = sizeof legacy_magic;
    mp_status st = mp__pickle_skim(file, base + *pos, size - *pos, &used, &v);
    if (st != MP_OK) return st;
    int ok = v.kind_is_int && v.int_value == LEGACY_PROTOCOL;
    mp__pickle_value_free(&v);
    if (!ok) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: legacy torch.save stream with an unknown protocol version", file);
    *pos += used;
    if ((st = mp__pickle_skim(file, base + *pos, size - *pos, &used, &v)) != MP_OK) return st;
    int le = v.little_endian;
    mp__pickle_value_free(&v);
    if (le == 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: saved on a big-endian machine: only little-endian checkpoints are "
                        "supported",
                        file);
    *pos += used;
    return MP_OK;
}

static mp_status open_legacy(const char *file, const uint8_t *base, size_t size, mp__pt_file *f) {
    size_t pos, used;
    mp_status st = legacy_header(file, base, size, &pos);
    if (st != MP_OK) return st;
    if ((st = mp__pickle_state_dict(file, base + pos, size - pos, 1, &used, &f->dict)) != MP_OK) return st;
    pos += used;
    mp__pickle_value keys;
    if ((st = mp__pickle_skim(file, base + pos, size - pos, &used, &keys)) != MP_OK) return st;
    pos += used;
    f->t = calloc(f->dict.n + 1, sizeof *f->t);
    keyed *ix = by_key(&f->dict);
    if (!f->t || !ix) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    /* Storages follow in key-list order: int64 element count, then the bytes. */
    for (size_t k = 0; st == MP_OK && k < keys.n_strs; k++) {
        size_t first = find_key(ix, f->dict.n, keys.strs[k]);
        const mp__pt_record *r0 = first < f->dict.n ? &f->dict.r[ix[first].i] : NULL;
        if (!r0) {
            st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: storage %s is not used by any tensor", file, keys.strs[k]);
            break;
        }
        if (size - pos < 8) {
            st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: truncated: storage %s missing at byte %zu", file, keys.strs[k],
                          pos);
            break;
        }
        uint64_t numel = 0;
        for (int b = 7; b >= 0; b--) numel = numel << 8 | base[pos + (size_t)b];
        pos += 8;
        size_t es = mp__pt_dtype_size(r0->dtype);
        if (numel != r0->storage_numel || numel > (size - pos) / es) {
            st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: storage %s: %llu elements at byte %zu run past the end or differ "
                          "from the %llu its tensors expect (truncated file?)",
                          file, keys.strs[k], (unsigned long long)numel, pos, (unsigned long long)r0->storage_numel);
            break;
        }
        for (size_t j = first; st == MP_OK && j < f->dict.n && !strcmp(ix[j].key, keys.strs[k]); j++) {
            size_t i = ix[j].i;
            if (f->t[i].name) {
                st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: storage %s listed twice", file, keys.strs[k]);
                break;
            }
            st = make_tensor(file, &f->dict.r[i], base + pos, numel * es, &f->t[i]);
            f->n++;
        }
        f->n_storages++;
        f->n_aligned64 += ((uintptr_t)(base + pos) & 63) == 0;
        pos += (size_t)(numel * es);
    }
    for (size_t i = 0; st == MP_OK && i < f->dict.n; i++)
        if (!f->t[i].name)
            st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: its storage %s is missing", file, f->dict.r[i].name,
                          f->dict.r[i].key);
    free(ix);
    mp__pickle_value_free(&keys);
    return st;
}

mp_status mp__pt_open(const char *file, const uint8_t *base, size_t size, mp__pt_file *f) {
    return mp__pt_open_fd(file, base, size, -1, f);
}

mp_status mp__pt_open_fd(const char *file, const uint8_t *base, size_t size, int fd, mp__pt_file *f) {
    memset(f, 0, sizeof *f);
    mp_status st;
    if (size >= 4 && !memcmp(base, "PK\x03\x04", 4)) {
        st = open_zip(file, base, size, fd, f);
    } else if (size >= sizeof legacy_magic && !memcmp(base, legacy_magic, sizeof legacy_magic)) {
        f->legacy = 1;
        st = open_legacy(file, base, size, f);
    } else if (size >= 4 && !memcmp(base, "PK", 2)) {
        st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP archive that does not start with an entry (damaged?)", file);
    } else {
        st = mp__fail(MP_ERR_MODEL_FORMAT,
                      "%s: not a PyTorch checkpoint: neither a torch.save ZIP archive nor the legacy torch.save format",
                      file);
    }
    if (st == MP_OK) st = finish(file, f);
    if (st != MP_OK) {
        int legacy = f->legacy;
        mp__pt_close(f);
        f->legacy = legacy;
    }
    return st;
}

/* ---- reading -------------------------------------------------------------------------------------- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
    else if (!man) bits = sign;
    else {
        float v = ldexpf((float)man, -24); /* subnormal: man * 2^-24, exact in float */
        return sign ? -v : v;
    }
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static float elem(int dtype, const uint8_t *p) {
    uint32_t bits;
    float x;
    switch (dtype) {
    case MP__PT_F16: return half_to_float((uint16_t)(p[0] | p[1] << 8));
    case MP__PT_BF16: bits = (uint32_t)(p[0] | p[1] << 8) << 16; break; /* bf16 = top half of fp32 */
    default: bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; break;
    }
    memcpy(&x, &bits, sizeof x);
    return x;
}

mp_status mp__pt_read_f32(const char *file, const mp__pt_tensor *t, float *dst) {
    if (t->dtype != MP__PT_F32 && t->dtype != MP__PT_F16 && t->dtype != MP__PT_BF16)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s: dtype %s is not supported (F32, F16, BF16)", file,
                        t->name, mp__pt_dtype_name(t->dtype));
    size_t es = mp__pt_dtype_size(t->dtype);
    if (t->contiguous) {
        if (t->dtype == MP__PT_F32) memcpy(dst, t->data, t->numel * es);
        else
            for (size_t i = 0; i < t->numel; i++) dst[i] = elem(t->dtype, t->data + i * es);
        return MP_OK;
    }
    /* Strided: walk the multi-index in row-major order (offsets checked by make_tensor). */
    int64_t idx[MP__PT_MAX_DIMS] = {0};
    size_t off = 0;
    for (size_t i = 0; i < t->numel; i++) {
        dst[i] = elem(t->dtype, t->data + off * es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) {
                off += (size_t)t->stride[d];
                break;
            }
            off -= (size_t)(t->stride[d] * (t->shape[d] - 1));
            idx[d] = 0;
        }
    }
    return MP_OK;
}
