/* test-torch.c - the pytorch_model.bin reader (src/engine/torch-zip.c, pickle.c, torch-ckpt.c)
 * over hand-built byte strings: ZIP archives written here entry by entry, pickles written opcode
 * by opcode. Valid files must give the exact tensors (strides, offsets, dtypes); every malformed
 * one a clear error naming what is wrong, never a crash (the suite also runs under ASan/UBSan). */
#include "engine/torch-ckpt.h"
#include "test.h"

#include <stdint.h>
#include <zlib.h>

/* ---- byte buffers --------------------------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        MP_ASSERT(b->p);
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put8(buf *b, unsigned x) { uint8_t c = (uint8_t)x; put(b, &c, 1); }
static void put16(buf *b, unsigned x) { put8(b, x & 255), put8(b, (x >> 8) & 255); }
static void put32(buf *b, uint32_t x) { put16(b, x & 0xffff), put16(b, x >> 16); }
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* ---- pickles, opcode by opcode --------------------------------------------------------------------- */

static void p_str(buf *b, const char *s) { put8(b, 'X'), put32(b, (uint32_t)strlen(s)), puts_(b, s); }
static void p_int(buf *b, unsigned x) {
    if (x < 256) put8(b, 'K'), put8(b, x);
    else put8(b, 'J'), put32(b, x);
}
static void p_global(buf *b, const char *mod, const char *name) {
    put8(b, 'c'), puts_(b, mod), put8(b, '\n'), puts_(b, name), put8(b, '\n');
}
static void p_ints(buf *b, int n, const int64_t *v) {
    put8(b, '(');
    for (int i = 0; i < n; i++) p_int(b, (unsigned)v[i]);
    put8(b, 't');
}

typedef struct ptensor {
    const char *name, *storage_type, *key;
    unsigned storage_numel, offset;
    int ndim;
    int64_t shape[4], stride[4];
    int as_parameter;
} ptensor;

/* What torch.save writes for one tensor: _rebuild_tensor_v2((persid), offset, size, stride,
 * False, OrderedDict()), optionally wrapped in _rebuild_parameter. */
static void p_tensor(buf *b, const ptensor *t) {
    if (t->as_parameter) p_global(b, "torch._utils", "_rebuild_parameter");
    p_global(b, "torch._utils", "_rebuild_tensor_v2");
    put8(b, '(');
    put8(b, '('), p_str(b, "storage"), p_global(b, "torch", t->storage_type), p_str(b, t->key), p_str(b, "cpu"),
        p_int(b, t->storage_numel), put8(b, 't'), put8(b, 'Q');
    p_int(b, t->offset);
    p_ints(b, t->ndim, t->shape);
    p_ints(b, t->ndim, t->stride);
    put8(b, 0x89);
    p_global(b, "collections", "OrderedDict"), put8(b, ')'), put8(b, 'R');
    put8(b, 't'), put8(b, 'R');
    if (t->as_parameter) put8(b, 0x88), p_global(b, "collections", "OrderedDict"), put8(b, ')'), put8(b, 'R'),
        put8(b, 0x87), put8(b, 'R');
}

static buf state_dict(const ptensor *t, int n) {
    buf b = {0};
    put8(&b, 0x80), put8(&b, 2);
    p_global(&b, "collections", "OrderedDict"), put8(&b, 'q'), put8(&b, 0), put8(&b, ')'), put8(&b, 'R');
    put8(&b, '(');
    for (int i = 0; i < n; i++) p_str(&b, t[i].name), p_tensor(&b, &t[i]);
    put8(&b, 'u');
    /* the _metadata attribute, as nn.Module.state_dict() leaves it */
    put8(&b, '}'), p_str(&b, "_metadata"), put8(&b, '}'), put8(&b, 's'), put8(&b, 'b');
    put8(&b, '.');
    return b;
}

/* ---- ZIP archives, stored entries 64-byte aligned as torch writes them ------------------------------ */

typedef struct zentry {
    const char *name;
    const void *data;
    size_t size;
} zentry;

typedef struct zopts {
    int method;         /* compression method written in the headers */
    int bad_crc;        /* CRC of entry 0 off by one */
    int64_t size_delta; /* added to entry 0's central-directory size */
    int no_align;
} zopts;

static buf zip(const zentry *e, int n, zopts o) {
    buf b = {0};
    uint32_t off[32], crc[32];
    MP_ASSERT(n <= 32);
    for (int i = 0; i < n; i++) {
        off[i] = (uint32_t)b.n;
        crc[i] = (uint32_t)crc32(0, e[i].data, (uInt)e[i].size) + (i == 0 && o.bad_crc);
        size_t nl = strlen(e[i].name), pad = 0;
        if (!o.no_align) pad = (64 - (b.n + 30 + nl + 4) % 64) % 64 + 4; /* an extra field "FB" + len */
        put32(&b, 0x04034b50), put16(&b, 20), put16(&b, 0), put16(&b, (unsigned)o.method), put32(&b, 0);
        put32(&b, crc[i]), put32(&b, (uint32_t)e[i].size), put32(&b, (uint32_t)e[i].size);
        put16(&b, (unsigned)nl), put16(&b, (unsigned)pad), puts_(&b, e[i].name);
        if (pad) {
            put16(&b, 0x4246), put16(&b, (unsigned)(pad - 4));
            for (size_t k = 4; k < pad; k++) put8(&b, 'Z');
        }
        put(&b, e[i].data, e[i].size);
    }
    uint32_t cd = (uint32_t)b.n;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        put32(&b, 0x02014b50), put16(&b, 20), put16(&b, 20), put16(&b, 0), put16(&b, (unsigned)o.method),
            put32(&b, 0), put32(&b, crc[i]);
        uint32_t sz = (uint32_t)((int64_t)e[i].size + (i == 0 ? o.size_delta : 0));
        put32(&b, sz), put32(&b, sz), put16(&b, (unsigned)nl), put16(&b, 0), put16(&b, 0), put16(&b, 0),
            put16(&b, 0), put32(&b, 0), put32(&b, off[i]), puts_(&b, e[i].name);
    }
    uint32_t cd_size = (uint32_t)b.n - cd;
    put32(&b, 0x06054b50), put16(&b, 0), put16(&b, 0), put16(&b, (unsigned)n), put16(&b, (unsigned)n);
    put32(&b, cd_size), put32(&b, cd), put16(&b, 0);
    return b;
}

/* A checkpoint "archive/..." with the given pickle and storages "0", "1", ... */
static buf checkpoint(const buf *pkl, const buf *storages, int n_storages, zopts o) {
    zentry e[16];
    char names[16][32];
    int n = 0;
    e[n++] = (zentry){"archive/data.pkl", pkl->p, pkl->n};
    for (int i = 0; i < n_storages; i++) {
        snprintf(names[i], sizeof names[i], "archive/data/%d", i);
        e[n++] = (zentry){names[i], storages[i].p, storages[i].n};
    }
    e[n++] = (zentry){"archive/version", "3\n", 2};
    e[n++] = (zentry){"archive/byteorder", "little", 6};
    return zip(e, n, o);
}

static buf floats(int n, float scale) {
    buf b = {0};
    for (int i = 0; i < n; i++) {
        float x = scale * (float)i;
        put(&b, &x, 4);
    }
    return b;
}

/* Expect mp__pt_open to fail with MP_ERR_MODEL_FORMAT and an error containing `want`. */
static void expect_fail(const buf *b, const char *want) {
    mp__pt_file f;
    mp_status st = mp__pt_open("x.bin", b->p, b->n, &f);
    if (st == MP_OK) MP_FAILF("expected an error containing \"%s\", got success", want);
    MP_ASSERT_EQ(st, MP_ERR_MODEL_FORMAT);
    if (getenv("MP_TEST_VERBOSE")) fprintf(stderr, "%s\n", mp_last_error());
    if (!strstr(mp_last_error(), want)) MP_FAILF("error \"%s\" lacks \"%s\"", mp_last_error(), want);
    MP_ASSERT_EQ(f.n, 0);
    mp__pt_close(&f);
}

static void expect_pickle_fail(const buf *pkl, const char *want) {
    buf s = floats(6, 1);
    buf b = checkpoint(pkl, &s, 1, (zopts){0});
    expect_fail(&b, want);
    free(b.p), free(s.p);
}

/* ---- cases ----------------------------------------------------------------------------------------- */

static const ptensor t_w = {"w", "FloatStorage", "0", 6, 0, 2, {2, 3}, {3, 1}, 0};

static void valid_f32(void) {
    ptensor t[3] = {t_w, t_w, t_w};
    t[1].name = "wt"; /* the transpose: shared storage, strides (1, 3) */
    t[1].shape[0] = 3, t[1].shape[1] = 2, t[1].stride[0] = 1, t[1].stride[1] = 3;
    t[2].name = "tail"; /* elements 4, 5 of the storage, as a parameter */
    t[2].ndim = 1, t[2].offset = 4, t[2].shape[0] = 2, t[2].stride[0] = 1, t[2].as_parameter = 1;
    buf pkl = state_dict(t, 3), s = floats(6, 1.5f);
    buf b = checkpoint(&pkl, &s, 1, (zopts){0});
    mp__pt_file f;
    MP_ASSERT_OK(mp__pt_open("x.bin", b.p, b.n, &f));
    MP_ASSERT_EQ(f.n, 3);
    MP_ASSERT_EQ(f.legacy, 0);
    MP_ASSERT_EQ(f.n_storages, 1);
    MP_ASSERT_EQ(f.n_aligned64, 1);
    MP_ASSERT_STR_EQ(f.t[0].name, "w");
    MP_ASSERT_EQ(f.t[0].dtype, MP__PT_F32);
    MP_ASSERT_EQ(f.t[0].numel, 6);
    MP_ASSERT(f.t[0].contiguous && f.t[0].shared);
    MP_ASSERT(((uintptr_t)(f.t[0].data - b.p) & 63) == 0);
    float out[6];
    MP_ASSERT_OK(mp__pt_read_f32("x.bin", &f.t[0], out));
    for (int i = 0; i < 6; i++) MP_ASSERT_EQ(out[i] * 2, 3 * i);
    MP_ASSERT(!f.t[1].contiguous);
    MP_ASSERT_OK(mp__pt_read_f32("x.bin", &f.t[1], out));
    static const int wt[6] = {0, 3, 1, 4, 2, 5}; /* w.t() row-major */
    for (int i = 0; i < 6; i++) MP_ASSERT_EQ(out[i] * 2, 3 * wt[i]);
    MP_ASSERT(f.t[2].contiguous);
    MP_ASSERT_EQ(f.t[2].data - f.t[0].data, 16);
    MP_ASSERT_OK(mp__pt_read_f32("x.bin", &f.t[2], out));
    MP_ASSERT_EQ(out[0] * 2, 12); MP_ASSERT_EQ(out[1] * 2, 15);
    mp__pt_close(&f);
    free(b.p), free(s.p), free(pkl.p);
}

static void half_types(void) {
    ptensor t[2] = {{"h", "HalfStorage", "0", 3, 0, 1, {3}, {1}, 0}, {"b", "BFloat16Storage", "1", 2, 0, 1, {2}, {1}, 0}};
    buf pkl = state_dict(t, 2), s[2] = {{0}, {0}};
    static const uint16_t h[3] = {0x3c00, 0xc000, 0x0001}; /* 1, -2, 2^-24 */
    static const uint16_t bf[2] = {0x3f80, 0x4049};        /* 1, 3.140625 */
    put(&s[0], h, sizeof h), put(&s[1], bf, sizeof bf);
    buf b = checkpoint(&pkl, s, 2, (zopts){0});
    mp__pt_file f;
    MP_ASSERT_OK(mp__pt_open("x.bin", b.p, b.n, &f));
    float out[3];
    MP_ASSERT_OK(mp__pt_read_f32("x.bin", &f.t[0], out));
    MP_ASSERT_EQ(out[0], 1); MP_ASSERT_EQ(out[1], -2); MP_ASSERT(out[2] == ldexpf(1, -24));
    MP_ASSERT_OK(mp__pt_read_f32("x.bin", &f.t[1], out));
    MP_ASSERT_EQ(out[0], 1); MP_ASSERT(out[1] == 3.140625f);
    MP_ASSERT(!f.t[0].shared);
    mp__pt_close(&f);
    free(b.p), free(s[0].p), free(s[1].p), free(pkl.p);
}

static void os_system(void) {
    /* pickle.dumps of a class whose __reduce__ returns (os.system, ("echo pwned",)), protocol 2 */
    buf p = {0};
    put8(&p, 0x80), put8(&p, 2), p_global(&p, "os", "system"), put8(&p, 'q'), put8(&p, 0);
    p_str(&p, "touch /tmp/mp-pwned"), put8(&p, 0x85), put8(&p, 'R'), put8(&p, '.');
    remove("/tmp/mp-pwned");
    expect_pickle_fail(&p, "refusing global os.system");
    MP_ASSERT(fopen("/tmp/mp-pwned", "r") == NULL);
    /* The same through STACK_GLOBAL (protocol 4), and hidden inside a tensor's hooks. */
    p.n = 0;
    put8(&p, 0x80), put8(&p, 4), p_str(&p, "builtins"), p_str(&p, "eval"), put8(&p, 0x93), put8(&p, '.');
    expect_pickle_fail(&p, "refusing global builtins.eval");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, '}'), p_str(&p, "w"), p_global(&p, "torch._utils", "_rebuild_tensor_v2");
    put8(&p, '('), p_global(&p, "subprocess", "Popen");
    expect_pickle_fail(&p, "refusing global subprocess.Popen");
    free(p.p);
}

static void bad_opcodes(void) {
    buf p = {0};
    put8(&p, 0x80), put8(&p, 2), put8(&p, '}'), put8(&p, 0xfe);
    expect_pickle_fail(&p, "unknown or unsupported opcode");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, 'i'), puts_(&p, "os\nsystem\n");
    expect_pickle_fail(&p, "instantiating classes");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, '}'); /* no STOP */
    expect_pickle_fail(&p, "without STOP");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, 'h'), put8(&p, 7), put8(&p, '.');
    expect_pickle_fail(&p, "memo entry read before");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, 'R'), put8(&p, '.');
    expect_pickle_fail(&p, "stack underflow");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, 'X'), put32(&p, 0x7fffffff), put8(&p, '.');
    expect_pickle_fail(&p, "truncated");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, 'r'), put32(&p, 0xffffffffu), put8(&p, '.');
    expect_pickle_fail(&p, "stack underflow");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, '}'), put8(&p, 'r'), put32(&p, 0xffffffffu), put8(&p, '.');
    expect_pickle_fail(&p, "memo index");
    /* 100k nested MARKs: bounded, no recursion */
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2);
    for (int i = 0; i < 100000; i++) put8(&p, '(');
    put8(&p, '.');
    expect_pickle_fail(&p, "MARK");
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, ']'), put8(&p, 'N'), put8(&p, 'N'), put8(&p, '.');
    expect_pickle_fail(&p, "other than one value");
    free(p.p);
}

static void recursive(void) {
    /* l = []; l.append(l) */
    buf p = {0};
    put8(&p, 0x80), put8(&p, 2), put8(&p, ']'), put8(&p, 'q'), put8(&p, 0), put8(&p, 'h'), put8(&p, 0), put8(&p, 'a');
    put8(&p, '.');
    expect_pickle_fail(&p, "holds a list, not a state dict");
    /* d = {}; d['a'] = d */
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, '}'), put8(&p, 'q'), put8(&p, 0), p_str(&p, "a"), put8(&p, 'h'),
        put8(&p, 0), put8(&p, 's'), put8(&p, '.');
    expect_pickle_fail(&p, "entry \"a\" is a dict, not a tensor");
    /* a tuple holding a list that holds the tuple's list twice, 10^5 levels through the memo */
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), put8(&p, ']'), put8(&p, 'q'), put8(&p, 0);
    for (int i = 0; i < 100000; i++) put8(&p, 'h'), put8(&p, 0), put8(&p, 0x85), put8(&p, 'q'), put8(&p, 0);
    put8(&p, '.');
    expect_pickle_fail(&p, "other than one value");
    free(p.p);
}

static void storage_errors(void) {
    ptensor t = t_w;
    t.key = "7"; /* no archive/data/7 */
    buf pkl = state_dict(&t, 1);
    expect_pickle_fail(&pkl, "its storage 7 is missing");
    free(pkl.p);
    t = t_w, t.shape[0] = 3; /* 9 elements of a 6-element storage */
    pkl = state_dict(&t, 1);
    expect_pickle_fail(&pkl, "reach element 8 of storage 0, which has 6");
    free(pkl.p);
    t = t_w, t.stride[0] = 4;
    pkl = state_dict(&t, 1);
    expect_pickle_fail(&pkl, "reach element 6");
    free(pkl.p);
    t = t_w, t.offset = 1;
    pkl = state_dict(&t, 1);
    expect_pickle_fail(&pkl, "reach element 6");
    free(pkl.p);
    t = t_w, t.storage_numel = 7; /* header says 7 elements, entry has 6 */
    pkl = state_dict(&t, 1);
    expect_pickle_fail(&pkl, "holds 24 bytes, but its header says 7 elements");
    free(pkl.p);
    t = t_w, t.shape[0] = 0x7fffffff, t.shape[1] = 0x7fffffff, t.ndim = 4, t.shape[2] = t.shape[3] = 0x7fffffff;
    t.stride[2] = t.stride[3] = 1;
    pkl = state_dict(&t, 1);
    expect_pickle_fail(&pkl, "overflows");
    free(pkl.p);
    t = t_w, t.storage_type = "DoubleStorage", t.storage_numel = 3; /* 24 bytes: parses, not convertible */
    pkl = state_dict(&t, 1);
    buf s = floats(6, 1), b = checkpoint(&pkl, &s, 1, (zopts){0});
    mp__pt_file f;
    t.shape[0] = 1;
    free(pkl.p);
    pkl = state_dict(&(ptensor){"d", "DoubleStorage", "0", 3, 0, 1, {3}, {1}, 0}, 1);
    free(b.p);
    b = checkpoint(&pkl, &s, 1, (zopts){0});
    MP_ASSERT_OK(mp__pt_open("x.bin", b.p, b.n, &f));
    float out[3];
    MP_ASSERT_STATUS(mp__pt_read_f32("x.bin", &f.t[0], out), MP_ERR_MODEL_FORMAT);
    MP_ASSERT(strstr(mp_last_error(), "dtype F64 is not supported"));
    mp__pt_close(&f);
    /* two tensors with one name */
    ptensor two[2] = {t_w, t_w};
    free(pkl.p), free(b.p);
    pkl = state_dict(two, 2);
    expect_pickle_fail(&pkl, "tensor w appears twice");
    free(pkl.p), free(s.p);
}

static void zip_errors(void) {
    ptensor t = t_w;
    buf pkl = state_dict(&t, 1), s = floats(6, 1);
    buf good = checkpoint(&pkl, &s, 1, (zopts){0});
    /* Every truncation fails cleanly. */
    for (size_t n = 0; n < good.n; n++) {
        mp__pt_file f;
        MP_ASSERT(mp__pt_open("x.bin", good.p, n, &f) != MP_OK);
        MP_ASSERT(strstr(mp_last_error(), "x.bin"));
        mp__pt_close(&f);
    }
    buf b = checkpoint(&pkl, &s, 1, (zopts){.bad_crc = 1});
    expect_fail(&b, "CRC-32");
    free(b.p);
    b = checkpoint(&pkl, &s, 1, (zopts){.method = 8});
    expect_fail(&b, "is compressed (method 8)");
    free(b.p);
    b = checkpoint(&pkl, &s, 1, (zopts){.size_delta = 1 << 20});
    expect_fail(&b, "run past the end");
    free(b.p);
    /* Unaligned storages still read (the loader copies them). */
    b = checkpoint(&pkl, &s, 1, (zopts){.no_align = 1});
    mp__pt_file f;
    MP_ASSERT_OK(mp__pt_open("x.bin", b.p, b.n, &f));
    MP_ASSERT_EQ(f.n_aligned64, 0);
    mp__pt_close(&f);
    free(b.p);
    /* Not a checkpoint at all; a ZIP without data.pkl. */
    buf junk = {0};
    puts_(&junk, "{\"not\": \"a checkpoint\"}");
    expect_fail(&junk, "not a PyTorch checkpoint");
    zentry e = {"model/constants.pkl", "x", 1};
    b = zip(&e, 1, (zopts){0});
    expect_fail(&b, "TorchScript");
    free(b.p), free(junk.p);
    /* Damaged end record: entry count larger than the directory can hold. */
    b = checkpoint(&pkl, &s, 1, (zopts){0});
    b.p[b.n - 22 + 10] = 0xff, b.p[b.n - 22 + 8] = 0xff;
    expect_fail(&b, "claims");
    free(b.p);
    free(good.p), free(pkl.p), free(s.p);
}

static const mp_test_case cases[] = {
    {"valid_f32", valid_f32},       {"half_types", half_types},         {"os_system", os_system},
    {"bad_opcodes", bad_opcodes},   {"recursive", recursive},           {"storage_errors", storage_errors},
    {"zip_errors", zip_errors},
};
MP_TEST_MAIN(cases)
