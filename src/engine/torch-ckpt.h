/*
 * torch-ckpt.h - reading PyTorch checkpoints (pytorch_model.bin) without Python: the ZIP container
 * (torch-zip.c), the state-dict pickle (pickle.c) and the two together (torch-ckpt.c). Private to
 * the engine; the loader sees a checkpoint as a list of named tensors pointing into a byte range
 * the caller owns (usually a read-only mapping of the file).
 */
#ifndef MP_TORCH_CKPT_H
#define MP_TORCH_CKPT_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define MP__PT_MAX_DIMS 8

/* Element types a checkpoint may hold. Only the three float types become model weights; the
 * others are parsed so the loader can name them in its error. */
typedef enum mp__pt_dtype {
    MP__PT_F32 = 0, MP__PT_F16, MP__PT_BF16, MP__PT_F64, MP__PT_I64, MP__PT_I32, MP__PT_I16, MP__PT_I8,
    MP__PT_U8, MP__PT_BOOL, MP__PT_N_DTYPES
} mp__pt_dtype;

const char *mp__pt_dtype_name(int dtype); /* "F32", "F16", "BF16", "F64", "I64", ... */
size_t mp__pt_dtype_size(int dtype);      /* bytes per element */

/* ---- torch-zip.c: stored-entry ZIP directory over bytes in memory -------------------------------- */

typedef struct mp__zip_entry {
    const char *name; /* points into the central directory: NOT NUL-terminated, see name_len */
    size_t name_len;
    uint64_t offset;  /* first data byte, from the start of the archive */
    uint64_t size;    /* bytes (stored: compressed == uncompressed) */
    uint32_t crc32;   /* from the central directory */
} mp__zip_entry;

typedef struct mp__zip {
    const uint8_t *base;
    size_t size;
    mp__zip_entry *e; /* sorted by name; owned */
    size_t n;
} mp__zip;

/* Parse the central directory of the archive in base[0, size). Every entry must be stored
 * (method 0), unencrypted, and lie inside the archive. `file` names the archive in errors.
 * On failure z is empty and mp__zip_close() is still safe. */
mp_status mp__zip_open(const char *file, const uint8_t *base, size_t size, mp__zip *z);
/* Same, when base is a mapping of the open file fd: the local headers are read with pread()
 * instead of through the mapping, so the load leaves no tensor page resident. */
mp_status mp__zip_open_fd(const char *file, const uint8_t *base, size_t size, int fd, mp__zip *z);
const mp__zip_entry *mp__zip_find(const mp__zip *z, const char *name, size_t name_len);
/* Check entry e's CRC-32 (reads all its bytes). */
mp_status mp__zip_check_crc(const char *file, const mp__zip *z, const mp__zip_entry *e);
void mp__zip_close(mp__zip *z);

/* ---- pickle.c: the state dict of data.pkl -------------------------------------------------------- */

/* One tensor of the state dict as the pickle describes it (nothing checked against the storages). */
typedef struct mp__pt_record {
    const char *name;    /* owned by the parse (see mp__pickle_free) */
    int dtype;           /* mp__pt_dtype, from the storage type */
    const char *key;     /* storage key: the entry <prefix>/data/<key>; owned by the parse */
    uint64_t storage_numel; /* elements the persistent id says the storage has */
    uint64_t offset;     /* storage_offset, elements */
    int ndim;
    int64_t shape[MP__PT_MAX_DIMS];
    int64_t stride[MP__PT_MAX_DIMS]; /* elements */
} mp__pt_record;

typedef struct mp__pt_dict {
    mp__pt_record *r;
    size_t n;
    void *priv;          /* the interpreter's arena, freed by mp__pickle_free */
} mp__pt_dict;

/* Interpret a protocol-2 pickle of a state dict (a dict or collections.OrderedDict of tensors
 * name -> torch._utils._rebuild_tensor_v2(...), possibly wrapped in _rebuild_parameter). Data
 * only: globals outside the allow-list are an error naming `file` and the global; nothing is ever
 * called. `legacy` expects the 6-field persistent ids of the pre-1.6 format. *used (if not NULL)
 * gets the bytes up to and including STOP. */
mp_status mp__pickle_state_dict(const char *file, const uint8_t *p, size_t n, int legacy, size_t *used,
                                mp__pt_dict *out);
void mp__pickle_free(mp__pt_dict *d);

/* What mp__pickle_skim() saw in a small plain-data pickle (the legacy format's header pickles
 * and its list of storage keys). */
typedef struct mp__pickle_value {
    int kind_is_int;
    int64_t int_value;
    int little_endian;   /* a dict with a bool "little_endian": 1/0; else -1 */
    char **strs;         /* a list of strings: owned copies */
    size_t n_strs;
} mp__pickle_value;

/* Run one plain-data pickle at p (no globals allowed beyond the state-dict list); *used gets
 * its length. Free out with mp__pickle_value_free(). */
mp_status mp__pickle_skim(const char *file, const uint8_t *p, size_t n, size_t *used, mp__pickle_value *out);
void mp__pickle_value_free(mp__pickle_value *pv);

/* ---- torch-ckpt.c: a whole checkpoint ------------------------------------------------------------ */

typedef struct mp__pt_tensor {
    const char *name;
    int dtype;
    int ndim;
    int64_t shape[MP__PT_MAX_DIMS];
    int64_t stride[MP__PT_MAX_DIMS];  /* elements */
    size_t numel;
    const uint8_t *data;              /* element [0,...,0]: storage bytes + offset */
    int contiguous;                   /* row-major with no gaps: data[0, numel) is the tensor */
    int shared;                       /* another tensor of the file uses the same storage */
} mp__pt_tensor;

typedef struct mp__pt_file {
    mp__pt_tensor *t;
    size_t n;
    int legacy;                       /* 1: pre-1.6 torch.save stream, 0: ZIP (torch >= 1.6) */
    int n_aligned64;                  /* storages starting on a 64-byte boundary of the file */
    int n_storages;
    mp__pt_dict dict;
    mp__zip zip;
} mp__pt_file;

/* Read the checkpoint in base[0, size) (the caller keeps those bytes alive and unchanged while
 * the tensors are used). Every tensor is checked to lie inside its storage and every storage
 * inside the file. `file` names it in errors. On failure *f is empty; mp__pt_close() is safe. */
mp_status mp__pt_open(const char *file, const uint8_t *base, size_t size, mp__pt_file *f);
/* Same over a mapping of the open file fd (see mp__zip_open_fd). */
mp_status mp__pt_open_fd(const char *file, const uint8_t *base, size_t size, int fd, mp__pt_file *f);
/* Gather tensor t into dst[t->numel] as fp32, honouring strides, converting F16/BF16. Only the
 * three float dtypes; others MP_ERR_MODEL_FORMAT. */
mp_status mp__pt_read_f32(const char *file, const mp__pt_tensor *t, float *dst);
void mp__pt_close(mp__pt_file *f);

#endif
