/*
 * pickle.c - a data-only interpreter for the pickles torch.save writes for a state dict.
 *
 * DESIGN
 *   A pickle is a program for a stack machine; Python's unpickler runs it with the power to
 *   import and call anything it names, which is why loading an untrusted pytorch_model.bin with
 *   Python is unsafe. Here the machine only builds data: None, bools, ints, floats, strings,
 *   tuples, lists, dicts, and four kinds of value that stand for the few globals a state dict
 *   needs (the allow-list below). A REDUCE of an allowed global is *interpreted* (an
 *   OrderedDict() is an empty dict; _rebuild_tensor_v2(storage, offset, size, stride, ...) is a
 *   tensor record); nothing is ever imported or called. Any other global is refused when it is
 *   named, with the file and the global in the error, before anything else happens.
 *
 *   Values live in one array and refer to each other by index, so a structure that contains
 *   itself (a list appended to itself through the memo) is harmless: nothing here walks values
 *   recursively, and freeing is a flat loop. Every opcode creates at most one value, so values
 *   are bounded by the pickle's length; the stack, the mark stack and the memo have fixed caps.
 *
 *   Opcodes: those of protocol 2 that a state dict uses, plus the protocol 3/4 forms of the same
 *   (BINBYTES, SHORT_BINUNICODE, MEMOIZE, FRAME, STACK_GLOBAL) so a file re-saved with a newer
 *   protocol still reads. Opcodes that instantiate classes (INST, OBJ, NEWOBJ, NEWOBJ_EX) or
 *   need a global's code (EXT1..4) are refused like unknown ones.
 */
#include "torch-ckpt.h"

#include <stdlib.h>
#include <string.h>

#define PICKLE_MAX ((size_t)256 << 20)   /* data.pkl of wav2vec2-large is ~60 kB */
#define STACK_MAX ((size_t)1 << 20)
#define MARKS_MAX ((size_t)1 << 16)
#define MEMO_MAX ((size_t)1 << 22)
#define GLOBAL_NAME_MAX 256

enum kind { K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE, K_LIST, K_DICT, K_GLOBAL, K_STORAGE, K_TENSOR };
static const char *const kind_names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict",
                                         "global", "storage", "tensor"};

enum glob { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE };

/* The allow-list. Storage types map to element types; torch >= 2 may name the typed-storage
 * classes through torch.storage when re-saving, so those spellings are accepted too. */
static const struct allowed {
    const char *module, *name;
    int glob, dtype;
} allowed[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, -1},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, -1},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR, -1}, /* torch < 1.0: (storage, offset, size, stride) */
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, -1},
    {"torch", "FloatStorage", G_STORAGE, MP__PT_F32},
    {"torch", "HalfStorage", G_STORAGE, MP__PT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, MP__PT_BF16},
    {"torch", "DoubleStorage", G_STORAGE, MP__PT_F64},
    {"torch", "LongStorage", G_STORAGE, MP__PT_I64},
    {"torch", "IntStorage", G_STORAGE, MP__PT_I32},
    {"torch", "ShortStorage", G_STORAGE, MP__PT_I16},
    {"torch", "CharStorage", G_STORAGE, MP__PT_I8},
    {"torch", "ByteStorage", G_STORAGE, MP__PT_U8},
    {"torch", "BoolStorage", G_STORAGE, MP__PT_BOOL},
    {"torch.storage", "FloatStorage", G_STORAGE, MP__PT_F32},
    {"torch.storage", "HalfStorage", G_STORAGE, MP__PT_F16},
    {"torch.storage", "BFloat16Storage", G_STORAGE, MP__PT_BF16},
};

typedef struct obj {
    uint8_t kind;
    uint8_t glob;           /* K_GLOBAL */
    int8_t dtype;           /* K_GLOBAL (storage type), K_STORAGE */
    int64_t i;              /* K_INT, K_BOOL; K_STORAGE: numel; K_TENSOR: record index */
    const uint8_t *s;       /* K_STR, K_BYTES (borrowed from the pickle); K_STORAGE: key */
    size_t len;
    uint32_t *it;           /* K_TUPLE, K_LIST items; K_DICT key, value pairs */
    size_t n, cap;
} obj;

typedef struct vm {
    const char *file;
    const uint8_t *p;
    size_t n, pos, op_pos;
    int legacy;
    obj *o;
    size_t n_o, cap_o;
    uint32_t *stack;
    size_t sp, cap_s;
    size_t *marks;
    size_t n_marks, cap_m;
    uint32_t *memo;         /* UINT32_MAX: empty */
    size_t cap_memo, n_memo; /* n_memo: entries written (MEMOIZE's next index, as Python's len(memo)) */
    mp__pt_record *rec;     /* one per _rebuild_tensor_v2, names filled at STOP */
    uint32_t *rec_storage;  /* [n_rec] the storage value of each record (its key) */
    size_t n_rec, cap_rec, cap_rec_storage;
} vm;

const char *mp__pt_dtype_name(int d) {
    static const char *const names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    return d >= 0 && d < MP__PT_N_DTYPES ? names[d] : "?";
}

size_t mp__pt_dtype_size(int d) {
    static const size_t sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
    return d >= 0 && d < MP__PT_N_DTYPES ? sizes[d] : 1;
}

static mp_status bad(vm *v, const char *what) {
    return mp__fail(MP_ERR_MODEL_FORMAT, "%s: pickle opcode 0x%02x at byte %zu: %s", v->file,
                    v->op_pos < v->n ? v->p[v->op_pos] : 0, v->op_pos, what);
}

static mp_status grow(void **p, size_t *cap, size_t need, size_t elem, size_t max) {
    if (need <= *cap) return MP_OK;
    if (need > max) return MP_ERR_NOMEM;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    if (c > max) c = max;
    void *q = realloc(*p, c * elem);
    if (!q) return MP_ERR_NOMEM;
    *p = q;
    *cap = c;
    return MP_OK;
}

/* A new value; its index in *id. */
static mp_status new_obj(vm *v, int kind, uint32_t *id) {
    if (grow((void **)&v->o, &v->cap_o, v->n_o + 1, sizeof *v->o, v->n + 16) != MP_OK)
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", v->file);
    memset(&v->o[v->n_o], 0, sizeof v->o[v->n_o]);
    v->o[v->n_o].kind = (uint8_t)kind;
    *id = (uint32_t)v->n_o++;
    return MP_OK;
}

static mp_status push(vm *v, uint32_t id) {
    if (grow((void **)&v->stack, &v->cap_s, v->sp + 1, sizeof *v->stack, STACK_MAX) != MP_OK)
        return bad(v, "stack deeper than 1M entries");
    v->stack[v->sp++] = id;
    return MP_OK;
}

static mp_status push_new(vm *v, int kind, uint32_t *id) {
    mp_status st = new_obj(v, kind, id);
    return st != MP_OK ? st : push(v, *id);
}

static mp_status pop(vm *v, uint32_t *id) {
    size_t floor = v->n_marks ? v->marks[v->n_marks - 1] : 0;
    if (v->sp <= floor) return bad(v, "stack underflow");
    *id = v->stack[--v->sp];
    return MP_OK;
}

static mp_status top(vm *v, uint32_t *id) {
    size_t floor = v->n_marks ? v->marks[v->n_marks - 1] : 0;
    if (v->sp <= floor) return bad(v, "stack underflow");
    *id = v->stack[v->sp - 1];
    return MP_OK;
}

/* Pop back to the last MARK: the items are stack[*from, sp) before the call. */
static mp_status pop_mark(vm *v, size_t *from) {
    if (!v->n_marks) return bad(v, "no MARK to pop to");
    *from = v->marks[--v->n_marks];
    return MP_OK;
}

static mp_status need(vm *v, size_t k) {
    if (v->n - v->pos < k) return bad(v, "truncated: operand runs past the end of the pickle");
    return MP_OK;
}

static uint64_t rd_le(const uint8_t *p, int k) {
    uint64_t x = 0;
    for (int i = k - 1; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

/* ---- globals ----------------------------------------------------------------------------------- */

static mp_status push_global(vm *v, const uint8_t *mod, size_t mod_len, const uint8_t *name, size_t name_len) {
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        const struct allowed *a = &allowed[i];
        if (strlen(a->module) == mod_len && !memcmp(a->module, mod, mod_len) && strlen(a->name) == name_len &&
            !memcmp(a->name, name, name_len)) {
            uint32_t id = 0;
            mp_status st = push_new(v, K_GLOBAL, &id);
            if (st != MP_OK) return st;
            v->o[id].glob = (uint8_t)a->glob;
            v->o[id].dtype = (int8_t)a->dtype;
            return MP_OK;
        }
    }
    int ml = mod_len > 100 ? 100 : (int)mod_len, nl = name_len > 100 ? 100 : (int)name_len;
    return mp__fail(MP_ERR_MODEL_FORMAT,
                    "%s: refusing global %.*s.%.*s at byte %zu: a state dict may only reference "
                    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and "
                    "torch storage types (nothing in the file is executed)",
                    v->file, ml, (const char *)mod, nl, (const char *)name, v->op_pos);
}

/* GLOBAL "module\nname\n" */
static mp_status op_global(vm *v) {
    const uint8_t *s[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        s[k] = v->p + v->pos;
        const uint8_t *nl = memchr(s[k], '\n', v->n - v->pos < GLOBAL_NAME_MAX ? v->n - v->pos : GLOBAL_NAME_MAX);
        if (!nl) return bad(v, "GLOBAL name without a newline within 256 bytes");
        len[k] = (size_t)(nl - s[k]);
        v->pos += len[k] + 1;
    }
    return push_global(v, s[0], len[0], s[1], len[1]);
}

static mp_status op_stack_global(vm *v) {
    uint32_t name = 0, mod = 0;
    mp_status st;
    if ((st = pop(v, &name)) != MP_OK || (st = pop(v, &mod)) != MP_OK) return st;
    if (v->o[name].kind != K_STR || v->o[mod].kind != K_STR) return bad(v, "STACK_GLOBAL needs two strings");
    return push_global(v, v->o[mod].s, v->o[mod].len, v->o[name].s, v->o[name].len);
}

/* ---- containers -------------------------------------------------------------------------------- */

static mp_status add_item(vm *v, uint32_t c, uint32_t item) {
    obj *o = &v->o[c];
    if (grow((void **)&o->it, &o->cap, o->n + 1, sizeof *o->it, (size_t)1 << 30) != MP_OK)
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", v->file);
    o->it[o->n++] = item;
    return MP_OK;
}

/* TUPLE / TUPLE1..3 / EMPTY_TUPLE: the top k items (or back to the mark when k < 0). */
static mp_status op_tuple(vm *v, long k) {
    size_t from = 0;
    mp_status st;
    if (k < 0) {
        if ((st = pop_mark(v, &from)) != MP_OK) return st;
    } else {
        size_t floor = v->n_marks ? v->marks[v->n_marks - 1] : 0;
        if (v->sp - floor < (size_t)k) return bad(v, "stack underflow");
        from = v->sp - (size_t)k;
    }
    uint32_t id = 0;
    if ((st = new_obj(v, K_TUPLE, &id)) != MP_OK) return st;
    for (size_t i = from; i < v->sp; i++)
        if ((st = add_item(v, id, v->stack[i])) != MP_OK) return st;
    v->sp = from;
    return push(v, id);
}

/* SETITEM(S) / APPEND(S): the target is below the items (below the mark for the -S forms). */
static mp_status op_fill(vm *v, int dict, int many) {
    size_t from = 0;
    mp_status st;
    if (many) {
        if ((st = pop_mark(v, &from)) != MP_OK) return st;
    } else {
        size_t floor = v->n_marks ? v->marks[v->n_marks - 1] : 0;
        size_t k = dict ? 2 : 1;
        if (v->sp - floor < k + 1) return bad(v, "stack underflow");
        from = v->sp - k;
    }
    size_t floor = v->n_marks ? v->marks[v->n_marks - 1] : 0;
    if (from <= floor) return bad(v, "no container below the items");
    uint32_t c = v->stack[from - 1];
    if (v->o[c].kind != (dict ? K_DICT : K_LIST))
        return bad(v, dict ? "SETITEM on something that is not a dict" : "APPEND on something that is not a list");
    if (dict && (v->sp - from) % 2) return bad(v, "SETITEMS with an odd number of items");
    for (size_t i = from; i < v->sp; i++)
        if ((st = add_item(v, c, v->stack[i])) != MP_OK) return st;
    v->sp = from;
    return MP_OK;
}

/* ---- the interpreted calls ---------------------------------------------------------------------- */

/* BINPERSID: ('storage', storage_type, key, location, numel) [+ view_metadata (None) in the
 * legacy format] -> a storage value. */
static mp_status op_persid(vm *v) {
    uint32_t pid = 0;
    mp_status st = pop(v, &pid);
    if (st != MP_OK) return st;
    const obj *t = &v->o[pid];
    size_t want = v->legacy ? 6 : 5;
    if (t->kind != K_TUPLE || t->n != want)
        return bad(v, v->legacy ? "persistent id is not ('storage', type, key, location, numel, view)"
                                : "persistent id is not ('storage', type, key, location, numel)");
    const obj *tag = &v->o[t->it[0]], *ty = &v->o[t->it[1]], *key = &v->o[t->it[2]], *loc = &v->o[t->it[3]],
              *num = &v->o[t->it[4]];
    if (tag->kind != K_STR || tag->len != 7 || memcmp(tag->s, "storage", 7) != 0)
        return bad(v, "persistent id does not start with 'storage'");
    if (ty->kind != K_GLOBAL || ty->glob != G_STORAGE) return bad(v, "persistent id: storage type is not a storage");
    if (key->kind != K_STR || key->len == 0 || key->len > 64) return bad(v, "persistent id: storage key not a string");
    if (loc->kind != K_STR) return bad(v, "persistent id: location is not a string");
    if (num->kind != K_INT || num->i < 0) return bad(v, "persistent id: element count not a non-negative integer");
    if (v->legacy && v->o[t->it[5]].kind != K_NONE)
        return bad(v, "storage views (a persistent id with view metadata) are not supported");
    uint32_t id = 0;
    int8_t dtype = ty->dtype;
    const uint8_t *ks = key->s;
    size_t kl = key->len;
    int64_t numel = num->i;
    if ((st = push_new(v, K_STORAGE, &id)) != MP_OK) return st;
    v->o[id].dtype = dtype;
    v->o[id].s = ks;
    v->o[id].len = kl;
    v->o[id].i = numel;
    return MP_OK;
}

/* An int tuple of at most MP__PT_MAX_DIMS non-negative entries. */
static mp_status int_tuple(vm *v, uint32_t id, const char *what, int64_t *out, int *n) {
    const obj *t = &v->o[id];
    if (t->kind != K_TUPLE) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s is a %s, not a tuple", v->file, what,
                                            kind_names[t->kind]);
    if (t->n > MP__PT_MAX_DIMS)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s has %zu dimensions, at most %d supported", v->file, what,
                        t->n, MP__PT_MAX_DIMS);
    for (size_t i = 0; i < t->n; i++) {
        const obj *e = &v->o[t->it[i]];
        if (e->kind != K_INT || e->i < 0)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: tensor %s[%zu] is not a non-negative integer", v->file, what, i);
        out[i] = e->i;
    }
    *n = (int)t->n;
    return MP_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]),
 * or (v1) _rebuild_tensor(storage, storage_offset, size, stride). */
static mp_status rebuild_tensor(vm *v, const obj *args, int v1) {
    if (v1 ? args->n != 4 : args->n != 6 && args->n != 7)
        return bad(v, v1 ? "_rebuild_tensor takes (storage, offset, size, stride)"
                         : "_rebuild_tensor_v2 takes (storage, offset, size, stride, requires_grad, hooks[, metadata])");
    const obj *s = &v->o[args->it[0]], *off = &v->o[args->it[1]];
    if (s->kind != K_STORAGE) return bad(v, "_rebuild_tensor_v2: first argument is not a storage");
    if (off->kind != K_INT || off->i < 0) return bad(v, "_rebuild_tensor_v2: storage offset is not a non-negative int");
    mp__pt_record r = {.dtype = s->dtype, .storage_numel = (uint64_t)s->i, .offset = (uint64_t)off->i};
    int n_stride;
    mp_status st;
    if ((st = int_tuple(v, args->it[2], "size", r.shape, &r.ndim)) != MP_OK ||
        (st = int_tuple(v, args->it[3], "stride", r.stride, &n_stride)) != MP_OK)
        return st;
    if (n_stride != r.ndim) return bad(v, "_rebuild_tensor_v2: size and stride have different lengths");
    /* The key is copied at STOP, from the storage value remembered next to the record. */
    if (grow((void **)&v->rec, &v->cap_rec, v->n_rec + 1, sizeof *v->rec, (size_t)1 << 24) != MP_OK ||
        grow((void **)&v->rec_storage, &v->cap_rec_storage, v->n_rec + 1, sizeof *v->rec_storage, (size_t)1 << 24) !=
            MP_OK)
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", v->file);
    v->rec[v->n_rec] = r;
    v->rec_storage[v->n_rec] = args->it[0];
    uint32_t id = 0;
    if ((st = push_new(v, K_TENSOR, &id)) != MP_OK) return st;
    v->o[id].i = (int64_t)v->n_rec++;
    return MP_OK;
}

static mp_status op_reduce(vm *v) {
    uint32_t a = 0, f = 0;
    mp_status st;
    if ((st = pop(v, &a)) != MP_OK || (st = pop(v, &f)) != MP_OK) return st;
    const obj *fn = &v->o[f], *args = &v->o[a];
    if (fn->kind != K_GLOBAL) return bad(v, "REDUCE of something that is not a global");
    if (args->kind != K_TUPLE) return bad(v, "REDUCE arguments are not a tuple");
    uint32_t id = 0;
    switch (fn->glob) {
    case G_ORDERED_DICT:
        if (args->n != 0) return bad(v, "OrderedDict() with arguments is not supported");
        return push_new(v, K_DICT, &id);
    case G_REBUILD_TENSOR_V2:
        return rebuild_tensor(v, args, 0);
    case G_REBUILD_TENSOR:
        return rebuild_tensor(v, args, 1);
    case G_REBUILD_PARAMETER:
        /* _rebuild_parameter(data, requires_grad, backward_hooks): the tensor itself. */
        if (args->n != 3 || v->o[args->it[0]].kind != K_TENSOR)
            return bad(v, "_rebuild_parameter takes (tensor, requires_grad, hooks)");
        return push(v, args->it[0]);
    default:
        return bad(v, "a storage type cannot be called");
    }
}

/* BUILD: set the state of the value below. Only a dict's (a state dict's _metadata attribute,
 * which holds module versions we don't need) is accepted, and dropped. */
static mp_status op_build(vm *v) {
    uint32_t state = 0, target = 0;
    mp_status st;
    if ((st = pop(v, &state)) != MP_OK || (st = top(v, &target)) != MP_OK) return st;
    if (v->o[target].kind != K_DICT) return bad(v, "BUILD on something that is not a dict");
    return MP_OK;
}

/* ---- the loop ---------------------------------------------------------------------------------- */

static mp_status op_memo_put(vm *v, size_t idx) {
    uint32_t id = 0;
    mp_status st = top(v, &id);
    if (st != MP_OK) return st;
    if (idx >= MEMO_MAX) return bad(v, "memo index above 4M");
    size_t old = v->cap_memo;
    if (grow((void **)&v->memo, &v->cap_memo, idx + 1, sizeof *v->memo, MEMO_MAX) != MP_OK)
        return mp__fail(MP_ERR_NOMEM, "%s: out of memory", v->file);
    for (size_t i = old; i < v->cap_memo; i++) v->memo[i] = UINT32_MAX;
    if (v->memo[idx] == UINT32_MAX) v->n_memo++;
    v->memo[idx] = id;
    return MP_OK;
}

static mp_status op_memo_get(vm *v, size_t idx) {
    if (idx >= v->cap_memo || v->memo[idx] == UINT32_MAX) return bad(v, "memo entry read before it was written");
    return push(v, v->memo[idx]);
}

static mp_status op_str(vm *v, int kind, size_t len_bytes) {
    mp_status st = need(v, len_bytes);
    if (st != MP_OK) return st;
    uint64_t len = rd_le(v->p + v->pos, (int)len_bytes);
    v->pos += len_bytes;
    if ((st = need(v, len)) != MP_OK) return st;
    uint32_t id = 0;
    if ((st = push_new(v, kind, &id)) != MP_OK) return st;
    v->o[id].s = v->p + v->pos;
    v->o[id].len = (size_t)len;
    v->pos += (size_t)len;
    return MP_OK;
}

static mp_status op_int(vm *v, int kind, int64_t x) {
    uint32_t id = 0;
    mp_status st = push_new(v, kind, &id);
    if (st == MP_OK) v->o[id].i = x;
    return st;
}

/* One opcode; *done set at STOP. */
static mp_status step(vm *v, int *done) {
    mp_status st;
    v->op_pos = v->pos;
    if (v->pos >= v->n) return bad(v, "truncated: the pickle ends without STOP");
    uint8_t op = v->p[v->pos++];
    uint32_t id = 0;
    size_t from = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if ((st = need(v, 1)) != MP_OK) return st;
        if (v->p[v->pos] < 2 || v->p[v->pos] > 5) return bad(v, "pickle protocol outside 2..5");
        v->pos++;
        return MP_OK;
    case 0x95: /* FRAME: a length hint */
        if ((st = need(v, 8)) != MP_OK) return st;
        v->pos += 8;
        return MP_OK;
    case '.': /* STOP */
        *done = 1;
        return MP_OK;
    case 'c': return op_global(v);
    case 0x93: return op_stack_global(v);
    case 'q': /* BINPUT */
        if ((st = need(v, 1)) != MP_OK) return st;
        return op_memo_put(v, v->p[v->pos++]);
    case 'r': /* LONG_BINPUT */
        if ((st = need(v, 4)) != MP_OK) return st;
        v->pos += 4;
        return op_memo_put(v, (size_t)rd_le(v->p + v->pos - 4, 4));
    case 0x94: /* MEMOIZE */
        return op_memo_put(v, v->n_memo);
    case 'h': /* BINGET */
        if ((st = need(v, 1)) != MP_OK) return st;
        return op_memo_get(v, v->p[v->pos++]);
    case 'j': /* LONG_BINGET */
        if ((st = need(v, 4)) != MP_OK) return st;
        v->pos += 4;
        return op_memo_get(v, (size_t)rd_le(v->p + v->pos - 4, 4));
    case '(': /* MARK */
        if (grow((void **)&v->marks, &v->cap_m, v->n_marks + 1, sizeof *v->marks, MARKS_MAX) != MP_OK)
            return bad(v, "more than 64k nested MARKs");
        v->marks[v->n_marks++] = v->sp;
        return MP_OK;
    case '0': return pop(v, &id); /* POP */
    case '1': /* POP_MARK */
        if ((st = pop_mark(v, &from)) != MP_OK) return st;
        v->sp = from;
        return MP_OK;
    case ')': return op_tuple(v, 0);
    case 't': return op_tuple(v, -1);
    case 0x85: return op_tuple(v, 1);
    case 0x86: return op_tuple(v, 2);
    case 0x87: return op_tuple(v, 3);
    case ']': return push_new(v, K_LIST, &id);
    case '}': return push_new(v, K_DICT, &id);
    case 'a': return op_fill(v, 0, 0);
    case 'e': return op_fill(v, 0, 1);
    case 's': return op_fill(v, 1, 0);
    case 'u': return op_fill(v, 1, 1);
    case 'N': return push_new(v, K_NONE, &id);
    case 0x88: return op_int(v, K_BOOL, 1);
    case 0x89: return op_int(v, K_BOOL, 0);
    case 'K': /* BININT1 */
        if ((st = need(v, 1)) != MP_OK) return st;
        return op_int(v, K_INT, v->p[v->pos++]);
    case 'M': /* BININT2 */
        if ((st = need(v, 2)) != MP_OK) return st;
        v->pos += 2;
        return op_int(v, K_INT, (int64_t)rd_le(v->p + v->pos - 2, 2));
    case 'J': /* BININT: signed 32-bit */
        if ((st = need(v, 4)) != MP_OK) return st;
        v->pos += 4;
        return op_int(v, K_INT, (int32_t)(uint32_t)rd_le(v->p + v->pos - 4, 4));
    case 0x8a: { /* LONG1: n-byte two's complement, little-endian */
        if ((st = need(v, 1)) != MP_OK) return st;
        size_t k = v->p[v->pos++];
        if (k > 8) return bad(v, "integer wider than 64 bits");
        if ((st = need(v, k)) != MP_OK) return st;
        uint64_t x = k ? rd_le(v->p + v->pos, (int)k) : 0;
        if (k && k < 8 && (v->p[v->pos + k - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * k); /* sign-extend */
        v->pos += k;
        return op_int(v, K_INT, (int64_t)x);
    }
    case 'G': /* BINFLOAT: big-endian double; the value is never needed */
        if ((st = need(v, 8)) != MP_OK) return st;
        v->pos += 8;
        return push_new(v, K_FLOAT, &id);
    case 'X': return op_str(v, K_STR, 4);      /* BINUNICODE */
    case 0x8c: return op_str(v, K_STR, 1);     /* SHORT_BINUNICODE */
    case 'T': return op_str(v, K_STR, 4);      /* BINSTRING */
    case 'U': return op_str(v, K_STR, 1);      /* SHORT_BINSTRING */
    case 'B': return op_str(v, K_BYTES, 4);    /* BINBYTES */
    case 'C': return op_str(v, K_BYTES, 1);    /* SHORT_BINBYTES */
    case 'Q': return op_persid(v);
    case 'R': return op_reduce(v);
    case 'b': return op_build(v);
    case 'i': case 'o': case 0x81: case 0x92: case 0x82: case 0x83: case 0x84:
        return bad(v, "instantiating classes (INST, OBJ, NEWOBJ, EXT) is not allowed in a state dict");
    default:
        return bad(v, "unknown or unsupported opcode");
    }
}

static void vm_free(vm *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n_o; i++) free(v->o[i].it);
    free(v->o), free(v->stack), free(v->marks), free(v->memo), free(v->rec), free(v->rec_storage);
    free(v);
}

static char *dup_n(const uint8_t *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* The final value must be a dict of name -> tensor; copy it into out. */
static mp_status collect(vm *v, uint32_t root, mp__pt_dict *out) {
    const obj *d = &v->o[root];
    if (d->kind != K_DICT)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: the pickle holds a %s, not a state dict", v->file,
                        kind_names[d->kind]);
    out->r = calloc(d->n / 2 + 1, sizeof *out->r);
    if (!out->r) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", v->file);
    for (size_t i = 0; i + 1 < d->n; i += 2) {
        const obj *k = &v->o[d->it[i]], *val = &v->o[d->it[i + 1]];
        if (k->kind != K_STR)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: state dict key %zu is a %s, not a string", v->file, i / 2,
                            kind_names[k->kind]);
        if (val->kind != K_TENSOR)
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: state dict entry \"%.*s\" is a %s, not a tensor", v->file,
                            k->len > 200 ? 200 : (int)k->len, (const char *)k->s, kind_names[val->kind]);
        mp__pt_record *r = &out->r[out->n];
        *r = v->rec[val->i];
        const obj *s = &v->o[v->rec_storage[val->i]];
        out->n++;
        r->name = dup_n(k->s, k->len);
        r->key = dup_n(s->s, s->len);
        if (!r->name || !r->key) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", v->file);
    }
    return MP_OK;
}

void mp__pickle_free(mp__pt_dict *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) free((char *)d->r[i].name), free((char *)d->r[i].key);
    free(d->r);
    memset(d, 0, sizeof *d);
}

static mp_status run(vm *v, size_t *used, uint32_t *result) {
    mp_status st;
    int done = 0;
    while (!done)
        if ((st = step(v, &done)) != MP_OK) return st;
    if (v->n_marks) return bad(v, "STOP with an open MARK");
    if (v->sp != 1) return bad(v, "STOP with other than one value on the stack");
    *result = v->stack[0];
    if (used) *used = v->pos;
    return MP_OK;
}

static vm *vm_new(const char *file, const uint8_t *p, size_t n, int legacy) {
    vm *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->file = file;
    v->p = p;
    v->n = n;
    v->legacy = legacy;
    return v;
}

mp_status mp__pickle_state_dict(const char *file, const uint8_t *p, size_t n, int legacy, size_t *used,
                                mp__pt_dict *out) {
    memset(out, 0, sizeof *out);
    if (n > PICKLE_MAX)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: pickle of %zu bytes exceeds the 256 MB limit", file, n);
    vm *v = vm_new(file, p, n, legacy);
    if (!v) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    uint32_t root = 0;
    mp_status st = run(v, used, &root);
    if (st == MP_OK) st = collect(v, root, out);
    vm_free(v);
    if (st != MP_OK) mp__pickle_free(out);
    return st;
}

mp_status mp__pickle_skim(const char *file, const uint8_t *p, size_t n, size_t *used, mp__pickle_value *out) {
    memset(out, 0, sizeof *out);
    out->little_endian = -1;
    vm *v = vm_new(file, p, n > PICKLE_MAX ? PICKLE_MAX : n, 0);
    if (!v) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    uint32_t root = 0;
    mp_status st = run(v, used, &root);
    if (st == MP_OK) {
        const obj *r = &v->o[root];
        out->kind_is_int = r->kind == K_INT;
        out->int_value = r->i;
        if (r->kind == K_LIST) {
            out->n_strs = r->n;
            out->strs = calloc(r->n + 1, sizeof *out->strs);
            if (!out->strs) st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
            for (size_t i = 0; st == MP_OK && i < r->n; i++) {
                const obj *e = &v->o[r->it[i]];
                if (e->kind != K_STR) {
                    st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: storage key list entry %zu is not a string", file, i);
                } else if (!(out->strs[i] = dup_n(e->s, e->len))) {
                    st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
                }
            }
        }
        if (r->kind == K_DICT) {
            for (size_t i = 0; i + 1 < r->n; i += 2) {
                const obj *k = &v->o[r->it[i]], *val = &v->o[r->it[i + 1]];
                if (k->kind == K_STR && k->len == 13 && !memcmp(k->s, "little_endian", 13) && val->kind == K_BOOL)
                    out->little_endian = (int)val->i;
            }
        }
    }
    vm_free(v);
    if (st != MP_OK) mp__pickle_value_free(out);
    return st;
}

void mp__pickle_value_free(mp__pickle_value *pv) {
    if (!pv) return;
    for (size_t i = 0; pv->strs && i < pv->n_strs; i++) free(pv->strs[i]);
    free(pv->strs);
    memset(pv, 0, sizeof *pv);
    pv->little_endian = -1;
}
