/* test-torch.c - the pytorch_model.bin reader (src/engine/torch-zip.c, pickle.c, torch-ckpt.c)
 * over hand-built byte strings: ZIP archives written here entry by entry, pickles written opcode
 * by opcode. Valid files must give the exact tensors (strides, offsets, dtypes); every malformed
 * one a clear error naming what is wrong, never a crash (the suite also runs under ASan/UBSan). */
#include "engine/torch-ckpt.h"
#include "engine/tensors.h"
#include "engine/st-write.h"
#include "engine/kernels.h"
#include "test.h"
#include "npy.h"

#include <stdint.h>
#include <unistd.h>
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
static void put64(buf *b, uint64_t x) { put32(b, (uint32_t)x), put32(b, (uint32_t)(x >> 32)); }
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
    int zip64;          /* sizes and offsets through ZIP64 extra fields and end records */
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
        if (o.zip64) {
            put32(&b, 0xffffffffu), put32(&b, 0xffffffffu), put16(&b, (unsigned)nl), put16(&b, 28), put16(&b, 0);
            put16(&b, 0), put16(&b, 0), put32(&b, 0), put32(&b, 0xffffffffu), puts_(&b, e[i].name);
            put16(&b, 1), put16(&b, 24), put64(&b, sz), put64(&b, sz), put64(&b, off[i]);
        } else {
            put32(&b, sz), put32(&b, sz), put16(&b, (unsigned)nl), put16(&b, 0), put16(&b, 0), put16(&b, 0),
                put16(&b, 0), put32(&b, 0), put32(&b, off[i]), puts_(&b, e[i].name);
        }
    }
    uint32_t cd_size = (uint32_t)b.n - cd;
    if (o.zip64) {
        uint32_t e64 = (uint32_t)b.n;
        put32(&b, 0x06064b50), put64(&b, 44), put16(&b, 45), put16(&b, 45), put32(&b, 0), put32(&b, 0);
        put64(&b, (uint64_t)n), put64(&b, (uint64_t)n), put64(&b, cd_size), put64(&b, cd);
        put32(&b, 0x07064b50), put32(&b, 0), put64(&b, e64), put32(&b, 1);
        put32(&b, 0x06054b50), put16(&b, 0), put16(&b, 0), put16(&b, 0xffff), put16(&b, 0xffff);
        put32(&b, 0xffffffffu), put32(&b, 0xffffffffu), put16(&b, 0);
        return b;
    }
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

/* mp__st_write's narrowing: every finite half and bf16 value survives float -> narrow exactly,
 * ties go to even, overflow to infinity; checked through the bytes of a written file. */
static const float *narrow_src;
static mp_status narrow_read(void *ctx, size_t i, float *dst) {
    (void)i;
    memcpy(dst, narrow_src, *(const size_t *)ctx * sizeof *dst);
    return MP_OK;
}

static uint16_t *narrow(const float *x, size_t n, int dtype) {
    char path[] = "/tmp/mp-narrow-XXXXXX";
    int fd = mkstemp(path);
    MP_ASSERT(fd >= 0);
    close(fd);
    mp__st_out t = {.name = "x", .ndim = 1, .shape = {(int64_t)n}, .numel = n};
    narrow_src = x;
    MP_ASSERT_OK(mp__st_write(path, dtype, &t, 1, narrow_read, &n));
    FILE *f = fopen(path, "rb");
    MP_ASSERT(f);
    uint8_t h8[8];
    MP_ASSERT(fread(h8, 1, 8, f) == 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | h8[i];
    MP_ASSERT(hl % 8 == 0);
    fseek(f, (long)(8 + hl), SEEK_SET);
    uint16_t *out = malloc(n * sizeof *out);
    MP_ASSERT(out && fread(out, 2, n, f) == n);
    fclose(f);
    remove(path);
    return out;
}

static void narrowing(void) {
    static float x[65536];
    mp__tensor t = {.dtype = MP_DT_F16, .numel = 1};
    for (uint32_t b = 0; b < 65536; b++) { /* every half, widened by the loader's own conversion */
        uint8_t le[2] = {(uint8_t)b, (uint8_t)(b >> 8)};
        t.data = le;
        mp__tensor_to_f32(&t, &x[b]);
    }
    uint16_t *h = narrow(x, 65536, MP__PT_F16);
    for (uint32_t b = 0; b < 65536; b++)
        if ((b & 0x7c00) != 0x7c00 || !(b & 0x3ff)) MP_ASSERT_EQ(h[b], b); /* NaNs stay NaN, payload aside */
        else MP_ASSERT((h[b] & 0x7c00) == 0x7c00 && (h[b] & 0x3ff));
    free(h);
    float y[6] = {1.0f + ldexpf(1, -11), 1.0f + 3 * ldexpf(1, -11), 65520.0f, 65519.0f, ldexpf(1, -25),
                  ldexpf(3, -26)};
    h = narrow(y, 6, MP__PT_F16);
    MP_ASSERT_EQ(h[0], 0x3c00); /* tie -> even (1.0) */
    MP_ASSERT_EQ(h[1], 0x3c02); /* tie -> even (1 + 2^-9) */
    MP_ASSERT_EQ(h[2], 0x7c00); /* rounds past the largest half: infinity */
    MP_ASSERT_EQ(h[3], 0x7bff); /* 65504 */
    MP_ASSERT_EQ(h[4], 0x0000); /* 2^-25: tie between 0 and the smallest subnormal -> 0 */
    MP_ASSERT_EQ(h[5], 0x0001); /* 1.5 * 2^-25 -> 2^-24 */
    free(h);
    float z[3] = {1.0f + ldexpf(1, -8), 1.0f + 3 * ldexpf(1, -8), -2.5f};
    h = narrow(z, 3, MP__PT_BF16);
    MP_ASSERT_EQ(h[0], 0x3f80); /* tie -> even */
    MP_ASSERT_EQ(h[1], 0x3f82);
    MP_ASSERT_EQ(h[2], 0xc020);
    free(h);
}

/* torch < 1.0 rebuilt tensors with _rebuild_tensor(storage, offset, size, stride). */
static void rebuild_v1(void) {
    buf p = {0};
    put8(&p, 0x80), put8(&p, 2), put8(&p, '}'), p_str(&p, "w"), p_global(&p, "torch._utils", "_rebuild_tensor");
    put8(&p, '(');
    put8(&p, '('), p_str(&p, "storage"), p_global(&p, "torch", "FloatStorage"), p_str(&p, "0"), p_str(&p, "cpu"),
        p_int(&p, 6), put8(&p, 't'), put8(&p, 'Q');
    p_int(&p, 2), p_ints(&p, 1, (int64_t[]){4}), p_ints(&p, 1, (int64_t[]){1});
    put8(&p, 't'), put8(&p, 'R'), put8(&p, 's'), put8(&p, '.');
    buf s = floats(6, 1), b = checkpoint(&p, &s, 1, (zopts){0});
    mp__pt_file f;
    MP_ASSERT_OK(mp__pt_open("x.bin", b.p, b.n, &f));
    float out[4];
    MP_ASSERT_EQ(f.n, 1);
    MP_ASSERT_OK(mp__pt_read_f32("x.bin", &f.t[0], out));
    MP_ASSERT_EQ(out[0], 2);
    MP_ASSERT_EQ(out[3], 5);
    mp__pt_close(&f);
    free(b.p);
    /* v1 with the v2 argument count is refused */
    p.n = 0;
    put8(&p, 0x80), put8(&p, 2), p_global(&p, "torch._utils", "_rebuild_tensor"), put8(&p, ')'), put8(&p, 'R');
    put8(&p, '.');
    expect_pickle_fail(&p, "_rebuild_tensor takes");
    free(p.p), free(s.p);
}

/* 200k names for one tensor (tied weights taken to the extreme): linear work, not quadratic. */
static void many_tensors(void) {
    buf p = {0};
    put8(&p, 0x80), put8(&p, 2), put8(&p, '}'), put8(&p, '(');
    char name[32];
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "t%d", i);
        p_str(&p, name);
        if (i == 0) p_tensor(&p, &t_w), put8(&p, 'q'), put8(&p, 1);
        else put8(&p, 'h'), put8(&p, 1);
    }
    put8(&p, 'u'), put8(&p, '.');
    buf s = floats(6, 1), b = checkpoint(&p, &s, 1, (zopts){0});
    mp__pt_file f;
    MP_ASSERT_OK(mp__pt_open("x.bin", b.p, b.n, &f));
    MP_ASSERT_EQ(f.n, n);
    MP_ASSERT(f.t[0].shared && f.t[n - 1].shared && f.t[n - 1].data == f.t[0].data);
    mp__pt_close(&f);
    free(p.p), free(s.p), free(b.p);
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
    /* ZIP64 (torch writes it for files past 4 GB): same tensors; and every truncation of it fails. */
    b = checkpoint(&pkl, &s, 1, (zopts){.zip64 = 1});
    {
        mp__pt_file z;
        MP_ASSERT_OK(mp__pt_open("x.bin", b.p, b.n, &z));
        MP_ASSERT_EQ(z.n, 1);
        MP_ASSERT_EQ(z.t[0].numel, 6);
        MP_ASSERT(((z.t[0].data - b.p) & 63) == 0);
        float out[6];
        MP_ASSERT_OK(mp__pt_read_f32("x.bin", &z.t[0], out));
        MP_ASSERT_EQ(out[5], 5);
        mp__pt_close(&z);
        for (size_t n = 0; n < b.n; n++) {
            MP_ASSERT(mp__pt_open("x.bin", b.p, n, &z) != MP_OK);
            mp__pt_close(&z);
        }
        b.p[b.n - 22 - 20 - 56 + 32] = 0x7f; /* ZIP64 entry count far beyond the directory */
        expect_fail(&b, "claims");
    }
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

/* ---- whole directories: tests/data/torch (tools/make_torch_fixtures.py) ------------------------------ */

#include <sys/stat.h>
#include <unistd.h>

/* A float32 .npy (1-D or 2-D, C order) as written by numpy; *n elements. */
static float *npy_all(const char *path, size_t *n) {
    npy a = npy_load(path);
    *n = a.n;
    return a.data;
}

/* Logits of the model on tests/data/ref/inputs/in<k>.npy; *n values. */
static float *run(const mp_model *m, int k, size_t *n) {
    char p[512];
    snprintf(p, sizeof p, "%s/ref/inputs/in%d.npy", MP_TEST_DATA, k);
    size_t ns;
    float *x = npy_all(p, &ns);
    size_t T = mp__model_n_frames(m, ns);
    *n = T * (size_t)m->hp.vocab;
    float *y = malloc(*n * sizeof *y + 4);
    mp__state *st = NULL;
    MP_ASSERT(y);
    MP_ASSERT_OK(mp__state_create(m, &st));
    MP_ASSERT_OK(mp__forward(m, st, x, ns, y));
    mp__state_free(st);
    free(x);
    return y;
}

static mp_model *load(const char *dir, const char *language, int use_mmap) {
    mp_model_config c = mp_model_default_config();
    c.language = language;
    c.use_mmap = use_mmap;
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_load(dir, &c, &m));
    return m;
}

/* dir loads as the same network as tests/data/ref/<ref>: logits bit-identical to the safetensors
 * model's, and within the parity rule of torchaudio's committed logits. */
static void same_as_ref(const char *dir, const char *ref, const char *language, const char *want_format) {
    char rdir[512];
    snprintf(rdir, sizeof rdir, "%s/ref/%s", MP_TEST_DATA, ref);
    mp_model *a = load(dir, language, 1), *b = load(rdir, NULL, 1);
    mp_model_info ia, ib;
    MP_ASSERT_OK(mp_model_get_info(a, &ia));
    MP_ASSERT_OK(mp_model_get_info(b, &ib));
    MP_ASSERT_STR_EQ(ia.weights_format, want_format);
    MP_ASSERT_STR_EQ(ib.weights_format, "safetensors");
    MP_ASSERT_EQ(ia.n_params, ib.n_params);
    MP_ASSERT_EQ(a->n_tokens, b->n_tokens);
    for (int i = 0; i < a->n_tokens; i++) MP_ASSERT_STR_EQ(a->tokens[i], b->tokens[i]);
    for (int k = 0; k < 2; k++) {
        size_t na, nb, ne;
        float *ya = run(a, k, &na), *yb = run(b, k, &nb);
        MP_ASSERT_EQ(na, nb);
        if (memcmp(ya, yb, na * sizeof *ya) != 0) MP_FAILF("%s: in%d: logits differ from %s", dir, k, rdir);
        char p[600];
        snprintf(p, sizeof p, "%s/logits-in%d.npy", rdir, k);
        float *e = npy_all(p, &ne);
        MP_ASSERT_EQ(ne, na);
        double md = 0, me = 0;
        for (size_t i = 0; i < na; i++) {
            double d = fabs((double)ya[i] - e[i]);
            if (!(d <= md)) md = d; /* NaN propagates */
            if (fabs(e[i]) > me) me = fabs(e[i]);
        }
        printf("%s in%d: identical to %s; max|diff| vs torchaudio %.3g (tol %.3g)\n", dir, k, ref, md,
               1e-3 * (me > 1 ? me : 1));
        MP_ASSERT(md <= 1e-3 * (me > 1 ? me : 1));
        free(ya), free(yb), free(e);
    }
    mp_model_free(a), mp_model_free(b);
}

static void fixture_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/torch/%s", MP_TEST_DATA, name); }

static int in_map(const mp_model *m, const void *p) {
    return m->map && (const char *)p >= (const char *)m->map && (const char *)p < (const char *)m->map + m->map_size;
}

static void dir_f32(void) {
    char d[512];
    fixture_dir(d, sizeof d, "f32");
    same_as_ref(d, "base_like", NULL, "pytorch zip");
    /* fp32 in place from the mapping, the shared q/k/v storage included (views at offsets);
     * the strided out_proj view was gathered into a copy. */
    mp_model *m = load(d, NULL, 1);
    MP_ASSERT(in_map(m, m->layers[0].q_w) && in_map(m, m->layers[0].k_w) && in_map(m, m->layers[0].v_w));
    MP_ASSERT(m->layers[0].k_w - m->layers[0].q_w == (ptrdiff_t)m->hp.hidden * m->hp.hidden);
    MP_ASSERT(in_map(m, m->layers[1].ff1_w) && in_map(m, m->lm_w));
    MP_ASSERT(!in_map(m, m->layers[0].o_w));
    /* A private copy (use_mmap = 0) computes the same. */
    mp_model *c = load(d, NULL, 0);
    MP_ASSERT(!c->map);
    size_t n1, n2;
    float *y1 = run(m, 0, &n1), *y2 = run(c, 0, &n2);
    MP_ASSERT(n1 == n2 && !memcmp(y1, y2, n1 * sizeof *y1));
    free(y1), free(y2);
    mp_model_free(m), mp_model_free(c);
}

static void dir_fp16(void) {
    char d[512];
    fixture_dir(d, sizeof d, "fp16");
    same_as_ref(d, "fp16", NULL, "pytorch zip");
    mp_model *m = load(d, NULL, 1);
    mp_model_info i;
    MP_ASSERT_OK(mp_model_get_info(m, &i));
    MP_ASSERT_STR_EQ(i.dtype, "F16");
    mp_model_free(m);
}

static void dir_sharded(void) {
    char d[512];
    fixture_dir(d, sizeof d, "sharded");
    same_as_ref(d, "large_like", NULL, "pytorch zip, 2 shards");
    fixture_dir(d, sizeof d, "st-sharded");
    same_as_ref(d, "bf16", NULL, "safetensors, 2 shards");
}

static void dir_legacy(void) {
    char d[512];
    fixture_dir(d, sizeof d, "legacy");
    same_as_ref(d, "odd", NULL, "pytorch legacy");
}

static char *copy_fixture(const char *name);
static void write_file(const char *dir, const char *name, const void *p, size_t n);
static void rm_rf(const char *dir);

static void dir_language(void) {
    char d[512];
    fixture_dir(d, sizeof d, "multilang");
    same_as_ref(d, "utf8", "vi", "pytorch zip");
    mp_model *m = NULL;
    MP_ASSERT_STATUS(mp_model_load(d, NULL, &m), MP_ERR_MODEL_FORMAT);
    MP_ASSERT(strstr(mp_last_error(), "vocab.json") && strstr(mp_last_error(), "--language") &&
              strstr(mp_last_error(), "en, vi"));
    MP_ASSERT_STATUS(mp_model_load(d, &(mp_model_config){.use_mmap = 1, .language = "fr"}, &m), MP_ERR_MODEL_FORMAT);
    MP_ASSERT(strstr(mp_last_error(), "\"fr\"") && strstr(mp_last_error(), "en, vi"));
    m = load(d, "en", 1);
    MP_ASSERT_STR_EQ(mp_model_token(m, 5), "E");
    MP_ASSERT_STR_EQ(mp_model_token(m, 40), ""); /* ids the en vocabulary does not name */
    mp_model_info i;
    MP_ASSERT_OK(mp_model_get_info(m, &i));
    MP_ASSERT_STR_EQ(i.language, "en");
    /* A pool's per-worker copies (weight_copies) keep the language. */
    mp_pool_config pc = mp_pool_default_config();
    pc.n_workers = 2, pc.weight_copies = 1, pc.preload = 1, pc.n_threads_per_worker = 1;
    mp_pool *pool = NULL;
    MP_ASSERT_OK(mp_pool_create(m, &pc, &pool));
    mp_pool_free(pool);
    mp_model_free(m);
    /* tokenizer_config.json's target_lang picks one when the config does not. */
    char *copy = copy_fixture("multilang");
    const char *tc = "{\"target_lang\": \"vi\", \"do_lower_case\": false}";
    write_file(copy, "tokenizer_config.json", tc, strlen(tc));
    m = load(copy, NULL, 1);
    MP_ASSERT_OK(mp_model_get_info(m, &i));
    MP_ASSERT_STR_EQ(i.language, "vi");
    mp_model_free(m);
    rm_rf(copy);
    free(copy);
    /* A single vocabulary ignores the language. */
    fixture_dir(d, sizeof d, "f32");
    m = load(d, "vi", 1);
    MP_ASSERT_OK(mp_model_get_info(m, &i));
    MP_ASSERT_STR_EQ(i.language, "");
    mp_model_free(m);
}

static char *tmpdir(void) {
    char t[] = "/tmp/mp-torch-XXXXXX";
    MP_ASSERT(mkdtemp(t));
    return strdup(t);
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    MP_ASSERT(system(cmd) == 0);
}

static void convert(void) {
    static const struct { const char *src, *ref, *dtype, *want_dtype; } c[] = {
        {"f32", "base_like", "f32", "F32"}, {"fp16", "fp16", "f16", "F16"}, {"st-sharded", "bf16", "bf16", "BF16"},
        {"legacy", "odd", NULL, "F32"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char d[512], *out = tmpdir();
        fixture_dir(d, sizeof d, c[i].src);
        mp_model *m = load(d, NULL, 1);
        MP_ASSERT_OK(mp_model_save_safetensors(m, out, c[i].dtype));
        mp_model_free(m);
        same_as_ref(out, c[i].ref, NULL, "safetensors"); /* same dtype as the source: exact */
        m = load(out, NULL, 1);
        mp_model_info info;
        MP_ASSERT_OK(mp_model_get_info(m, &info));
        MP_ASSERT_STR_EQ(info.dtype, c[i].want_dtype);
        MP_ASSERT(in_map(m, m->lm_w) == !strcmp(c[i].want_dtype, "F32"));
        mp_model_free(m);
        rm_rf(out);
        free(out);
    }
    /* Narrowing: fp32 -> f16 loads and stays close. */
    char d[512], *out = tmpdir();
    fixture_dir(d, sizeof d, "f32");
    mp_model *m = load(d, NULL, 1), *h = NULL;
    MP_ASSERT_OK(mp_model_save_safetensors(m, out, "f16"));
    MP_ASSERT_STATUS(mp_model_save_safetensors(m, out, "int8"), MP_ERR_INVALID_ARG);
    h = load(out, NULL, 1);
    size_t n1, n2;
    float *y1 = run(m, 0, &n1), *y2 = run(h, 0, &n2);
    MP_ASSERT_EQ(n1, n2);
    double md = 0;
    for (size_t i = 0; i < n1; i++) md = fmax(md, fabs((double)y1[i] - y2[i]));
    printf("f32 -> f16: max|logit diff| %.3g\n", md);
    MP_ASSERT(md > 0 && md < 0.05);
    free(y1), free(y2);
    mp_model_free(h), mp_model_free(m);
    MP_ASSERT_OK(mp_model_create_random("tiny", 1, &m));
    MP_ASSERT_STATUS(mp_model_save_safetensors(m, out, NULL), MP_ERR_INVALID_ARG);
    mp_model_free(m);
    rm_rf(out);
    free(out);
}

/* A model whose fp32 weights were released at load (int8; big fp32 models, packed) converts from
 * its mapped file exactly (the released pages are read again from the file), and one read into
 * memory (use_mmap = 0), whose released pages are gone, is refused instead of written as zeros. */
static void convert_released(void) {
    if (!mp__have_onednn()) MP_SKIP("built without oneDNN (no int8)");
    char d[512], *out = tmpdir();
    fixture_dir(d, sizeof d, "f32");
    mp_model *m = NULL;
    MP_ASSERT_OK(mp_model_load(d, &(mp_model_config){.use_mmap = 1, .dtype = MP_DTYPE_INT8}, &m));
    MP_ASSERT(m->quant && !m->layers[0].q_w);
    MP_ASSERT_OK(mp_model_save_safetensors(m, out, "f32"));
    mp_model_free(m);
    same_as_ref(out, "base_like", NULL, "safetensors");
    MP_ASSERT_OK(mp_model_load(d, &(mp_model_config){.use_mmap = 0, .dtype = MP_DTYPE_INT8}, &m));
    MP_ASSERT_STATUS(mp_model_save_safetensors(m, out, "f32"), MP_ERR_INVALID_ARG);
    MP_ASSERT(strstr(mp_last_error(), "use_mmap") != NULL);
    mp_model_free(m);
    mp__prepack_set_replace_above(1); /* as a big model's would be */
    MP_ASSERT_OK(mp_model_load(d, &(mp_model_config){.use_mmap = 0}, &m));
    mp__prepack_set_replace_above(0);
    if (m->packed) { /* AVX2 (the tiny shapes do not qualify on AVX-512) */
        MP_ASSERT(m->packed->replaced);
        MP_ASSERT_STATUS(mp_model_save_safetensors(m, out, "f32"), MP_ERR_INVALID_ARG);
    }
    mp_model_free(m);
    rm_rf(out);
    free(out);
}

/* Copy the fixture `name` to a new temp dir; returns it (malloc). */
static char *copy_fixture(const char *name) {
    char d[512], cmd[1200], *out = tmpdir();
    fixture_dir(d, sizeof d, name);
    snprintf(cmd, sizeof cmd, "cp '%s'/* '%s'/", d, out);
    MP_ASSERT(system(cmd) == 0);
    return out;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    MP_ASSERT(f && fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void load_fails(const char *dir, mp_status want, const char *a, const char *b) {
    mp_model *m = (mp_model *)1;
    MP_ASSERT_STATUS(mp_model_load(dir, NULL, &m), want);
    MP_ASSERT(m == NULL);
    if (!strstr(mp_last_error(), a) || (b && !strstr(mp_last_error(), b)))
        MP_FAILF("error \"%s\" should name \"%s\" and \"%s\"", mp_last_error(), a, b ? b : "");
    printf("  %s\n", mp_last_error());
}

static void bad_dirs(void) {
    char *d = copy_fixture("sharded"), p[600];
    const char *idx = "{\"weight_map\": {\"lm_head.weight\": \"../pytorch_model-00001-of-00002.bin\"}}";
    write_file(d, "pytorch_model.bin.index.json", idx, strlen(idx));
    load_fails(d, MP_ERR_MODEL_FORMAT, "pytorch_model.bin.index.json", "is not a file name");
    idx = "{\"weight_map\": {\"lm_head.weight\": \"pytorch_model-00003-of-00003.bin\"}}";
    write_file(d, "pytorch_model.bin.index.json", idx, strlen(idx));
    load_fails(d, MP_ERR_IO, "pytorch_model-00003-of-00003.bin", "missing");
    idx = "{\"weight_map\": {\"lm_head.weight\": \"pytorch_model-00001-of-00002.bin\"}}";
    write_file(d, "pytorch_model.bin.index.json", idx, strlen(idx));
    load_fails(d, MP_ERR_MODEL_FORMAT, "lm_head.weight", "the index says pytorch_model-00001-of-00002.bin");
    write_file(d, "pytorch_model.bin.index.json", "{\"weight_map\": 3}", 17);
    load_fails(d, MP_ERR_MODEL_FORMAT, "pytorch_model.bin.index.json", "weight_map");
    rm_rf(d);
    free(d);

    /* Damaged pytorch_model.bin in a model directory: the error names the file. */
    d = copy_fixture("f32");
    snprintf(p, sizeof p, "%s/pytorch_model.bin", d);
    FILE *f = fopen(p, "rb");
    MP_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n);
    MP_ASSERT(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    write_file(d, "pytorch_model.bin", b, (size_t)n / 2);
    load_fails(d, MP_ERR_MODEL_FORMAT, "pytorch_model.bin", "ZIP");
    b[70] ^= 0x5a; /* inside data.pkl: the CRC catches it */
    write_file(d, "pytorch_model.bin", b, (size_t)n);
    load_fails(d, MP_ERR_MODEL_FORMAT, "pytorch_model.bin", "CRC-32");
    free(b);
    /* A state dict whose pickle calls os.system, as a whole directory. */
    buf pk = {0};
    put8(&pk, 0x80), put8(&pk, 2), p_global(&pk, "os", "system"), p_str(&pk, "touch /tmp/mp-pwned2"),
        put8(&pk, 0x85), put8(&pk, 'R'), put8(&pk, '.');
    buf z = checkpoint(&pk, NULL, 0, (zopts){0});
    write_file(d, "pytorch_model.bin", z.p, z.n);
    remove("/tmp/mp-pwned2");
    load_fails(d, MP_ERR_MODEL_FORMAT, "pytorch_model.bin", "refusing global os.system");
    MP_ASSERT(access("/tmp/mp-pwned2", F_OK) != 0);
    free(pk.p), free(z.p);
    /* A tensor that is no float: named. */
    ptensor t = {"lm_head.bias", "LongStorage", "0", 3, 0, 1, {3}, {1}, 0};
    pk = state_dict(&t, 1);
    buf s = floats(6, 1);
    z = checkpoint(&pk, &s, 1, (zopts){0});
    write_file(d, "pytorch_model.bin", z.p, z.n);
    load_fails(d, MP_ERR_MODEL_FORMAT, "lm_head.bias", "unsupported dtype I64");
    free(pk.p), free(z.p), free(s.p);
    /* No weights at all. */
    snprintf(p, sizeof p, "%s/pytorch_model.bin", d);
    unlink(p);
    load_fails(d, MP_ERR_IO, "model.safetensors", "pytorch_model.bin");
    rm_rf(d);
    free(d);
}

static const mp_test_case cases[] = {
    {"valid_f32", valid_f32},       {"half_types", half_types},         {"os_system", os_system},
    {"bad_opcodes", bad_opcodes},   {"recursive", recursive},           {"storage_errors", storage_errors},
    {"zip_errors", zip_errors},     {"many_tensors", many_tensors},     {"rebuild_v1", rebuild_v1},         {"narrowing", narrowing},     {"dir_f32", dir_f32},               {"dir_fp16", dir_fp16},
    {"dir_sharded", dir_sharded},   {"dir_legacy", dir_legacy},         {"dir_language", dir_language},
    {"convert", convert},           {"convert_released", convert_released}, {"bad_dirs", bad_dirs},
};
MP_TEST_MAIN(cases)
