/*
 * torch-zip.c - the ZIP central directory of a torch.save archive, read over bytes in memory.
 *
 * DESIGN
 *   torch.save (>= 1.6) writes a ZIP archive whose entries are all stored (method 0), each
 *   storage's bytes padded by an extra field so that they start on a 64-byte boundary. We read
 *   the directory by hand instead of with libzip or minizip because the point is to use the
 *   tensors in place: a stored entry in an mmap'd file is just a byte range, and all we need is
 *   where each range starts. libzip only hands out entry bytes through its read stream API
 *   (zip_fopen/zip_fread), which copies every byte into a buffer; that would double the RSS of a
 *   378 MB model and read it all at load. The stored-only subset is small (end record, ZIP64 end
 *   record, central and local headers), and every offset and length is bounds-checked here
 *   before use. Compressed or encrypted entries are refused: torch never writes them.
 *
 *   Sizes come from the central directory, not the local headers: torch's writer sets the
 *   data-descriptor flag and leaves the local sizes zero. Local headers are read only for their
 *   name and extra-field lengths, which fix where the data starts.
 */
#include "torch-ckpt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_END64_LOC 0x07064b50u
#define END_LEN 22
#define END64_LEN 56
#define END64_LOC_LEN 20
#define CENTRAL_LEN 46
#define LOCAL_LEN 30

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

void mp__zip_close(mp__zip *z) {
    if (!z) return;
    free(z->e);
    memset(z, 0, sizeof *z);
}

/* The end-of-central-directory record: the last signature match within the final 64 kB + 22
 * bytes (its comment is at most 65535 bytes). */
static mp_status find_end(const char *file, const uint8_t *b, size_t size, size_t *pos) {
    if (size < END_LEN)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: truncated ZIP archive: %zu bytes, no end-of-directory record", file,
                        size);
    size_t lo = size - END_LEN > 65535 ? size - END_LEN - 65535 : 0;
    for (size_t i = size - END_LEN + 1; i-- > lo;) {
        if (rd32(b + i) == SIG_END && i + END_LEN + rd16(b + i + 20) == size) {
            *pos = i;
            return MP_OK;
        }
    }
    return mp__fail(MP_ERR_MODEL_FORMAT, "%s: not a ZIP archive, or truncated: no end-of-directory record", file);
}

/* Entry count, directory size and offset, from the end record or its ZIP64 form. */
static mp_status read_end(const char *file, const uint8_t *b, size_t size, size_t end, uint64_t *n, uint64_t *cd_size,
                          uint64_t *cd_off) {
    const uint8_t *e = b + end;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: multi-volume ZIP archives are not supported", file);
    *n = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    if (*n != 0xffff && *cd_size != 0xffffffffu && *cd_off != 0xffffffffu) return MP_OK;
    /* ZIP64: a locator right before the end record points at the 64-bit end record. */
    if (end < END64_LOC_LEN || rd32(b + end - END64_LOC_LEN) != SIG_END64_LOC)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP64 archive without its end-of-directory locator", file);
    uint64_t off = rd64(b + end - END64_LOC_LEN + 8);
    if (end < END64_LOC_LEN + END64_LEN || off > end - END64_LOC_LEN - END64_LEN || rd32(b + off) != SIG_END64)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP64 end-of-directory record missing or outside the file", file);
    const uint8_t *e64 = b + off;
    *n = rd64(e64 + 32);
    *cd_size = rd64(e64 + 40);
    *cd_off = rd64(e64 + 48);
    return MP_OK;
}

/* Replace 0xffffffff fields with their ZIP64 extra-field values (order: size, csize, offset). */
static mp_status zip64_fields(const char *file, const uint8_t *x, size_t x_len, uint64_t *usize, uint64_t *csize,
                              uint64_t *loc) {
    size_t i = 0;
    while (i + 4 <= x_len) {
        uint16_t id = rd16(x + i), len = rd16(x + i + 2);
        if (len > x_len - i - 4) break;
        if (id == 0x0001) {
            const uint8_t *p = x + i + 4, *end = p + len;
            uint64_t *f[3] = {usize, csize, loc};
            for (int k = 0; k < 3; k++) {
                if (*f[k] != 0xffffffffu) continue;
                if (end - p < 8) return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP64 extra field too short", file);
                *f[k] = rd64(p);
                p += 8;
            }
            return MP_OK;
        }
        i += 4 + (size_t)len;
    }
    if (*usize == 0xffffffffu || *csize == 0xffffffffu || *loc == 0xffffffffu)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: entry needs a ZIP64 extra field, which is missing", file);
    return MP_OK;
}

static int cmp_entry(const void *a, const void *b) {
    const mp__zip_entry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* One central-directory header at b[*pos]: fills e and advances *pos. cd_end bounds the header. */
static mp_status read_central(const char *file, const uint8_t *b, size_t size, int fd, uint64_t cd_off,
                              uint64_t cd_end, uint64_t *pos, mp__zip_entry *e) {
    uint64_t p = *pos;
    if (cd_end - p < CENTRAL_LEN || rd32(b + p) != SIG_CENTRAL)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP central directory damaged at byte %llu", file,
                        (unsigned long long)p);
    const uint8_t *h = b + p;
    uint16_t flags = rd16(h + 8), method = rd16(h + 10);
    size_t n_len = rd16(h + 28), x_len = rd16(h + 30), c_len = rd16(h + 32);
    if (cd_end - p - CENTRAL_LEN < (uint64_t)n_len + x_len + c_len)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP central directory entry runs past the directory", file);
    e->name = (const char *)h + CENTRAL_LEN;
    e->name_len = n_len;
    e->crc32 = rd32(h + 16);
    uint64_t csize = rd32(h + 20), usize = rd32(h + 24), loc = rd32(h + 42);
    mp_status st = zip64_fields(file, h + CENTRAL_LEN + n_len, x_len, &usize, &csize, &loc);
    if (st != MP_OK) return st;
    int nl = n_len > 200 ? 200 : (int)n_len;
    if (flags & 1)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP entry %.*s is encrypted", file, nl, e->name);
    if (method != 0)
        return mp__fail(MP_ERR_MODEL_FORMAT,
                        "%s: ZIP entry %.*s is compressed (method %u); torch.save stores entries uncompressed, "
                        "re-save the checkpoint with torch.save",
                        file, nl, e->name, method);
    if (csize != usize)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP entry %.*s: stored sizes differ (%llu vs %llu)", file, nl,
                        e->name, (unsigned long long)csize, (unsigned long long)usize);
    /* The local header: fixed part, then its own name and extra lengths. */
    if (loc > cd_off || cd_off - loc < LOCAL_LEN)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP entry %.*s: local header at byte %llu past the directory "
                        "(truncated file?)",
                        file, nl, e->name, (unsigned long long)loc);
    /* Through the descriptor when there is one: touching each entry's first page through the
     * mapping would make those pages (and the kernel's fault-around neighbours) resident. */
    uint8_t lh[LOCAL_LEN];
    if (fd >= 0) {
        ssize_t r;
        do r = pread(fd, lh, LOCAL_LEN, (off_t)loc);
        while (r < 0 && errno == EINTR);
        if (r != LOCAL_LEN) return mp__fail(MP_ERR_IO, "%s: read failed at byte %llu", file, (unsigned long long)loc);
    } else {
        memcpy(lh, b + loc, LOCAL_LEN);
    }
    if (rd32(lh) != SIG_LOCAL)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP entry %.*s: no local header at byte %llu (damaged file?)", file,
                        nl, e->name, (unsigned long long)loc);
    uint64_t data = loc + LOCAL_LEN + rd16(lh + 26) + rd16(lh + 28);
    if (data > cd_off || usize > cd_off - data || cd_off > size)
        return mp__fail(MP_ERR_MODEL_FORMAT,
                        "%s: ZIP entry %.*s: %llu bytes at byte %llu run past the end of the data (truncated file?)",
                        file, nl, e->name, (unsigned long long)usize, (unsigned long long)data);
    e->offset = data;
    e->size = usize;
    *pos = p + CENTRAL_LEN + n_len + x_len + c_len;
    return MP_OK;
}

mp_status mp__zip_open(const char *file, const uint8_t *b, size_t size, mp__zip *z) {
    return mp__zip_open_fd(file, b, size, -1, z);
}

mp_status mp__zip_open_fd(const char *file, const uint8_t *b, size_t size, int fd, mp__zip *z) {
    memset(z, 0, sizeof *z);
    size_t end = 0;
    uint64_t n = 0, cd_size = 0, cd_off = 0;
    mp_status st = find_end(file, b, size, &end);
    if (st == MP_OK) st = read_end(file, b, size, end, &n, &cd_size, &cd_off);
    if (st != MP_OK) return st;
    if (cd_off > end || cd_size > end - cd_off)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP central directory (%llu bytes at %llu) outside the file "
                        "(truncated?)",
                        file, (unsigned long long)cd_size, (unsigned long long)cd_off);
    /* Each header is at least 46 bytes: this bounds the allocation by the file size. */
    if (n > cd_size / CENTRAL_LEN)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP directory claims %llu entries in %llu bytes", file,
                        (unsigned long long)n, (unsigned long long)cd_size);
    z->e = calloc(n ? (size_t)n : 1, sizeof *z->e);
    if (!z->e) return mp__fail(MP_ERR_NOMEM, "%s: out of memory", file);
    z->base = b;
    z->size = size;
    uint64_t pos = cd_off;
    for (uint64_t i = 0; i < n; i++) {
        if ((st = read_central(file, b, size, fd, cd_off, cd_off + cd_size, &pos, &z->e[i])) != MP_OK) {
            mp__zip_close(z);
            return st;
        }
        z->n++;
    }
    qsort(z->e, z->n, sizeof *z->e, cmp_entry);
    for (size_t i = 1; i < z->n; i++) {
        if (cmp_entry(&z->e[i - 1], &z->e[i]) == 0) {
            int nl = z->e[i].name_len > 200 ? 200 : (int)z->e[i].name_len;
            st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP entry %.*s appears twice", file, nl, z->e[i].name);
            mp__zip_close(z);
            return st;
        }
    }
    return MP_OK;
}

const mp__zip_entry *mp__zip_find(const mp__zip *z, const char *name, size_t name_len) {
    mp__zip_entry key = {.name = name, .name_len = name_len};
    if (!z->n) return NULL;
    return bsearch(&key, z->e, z->n, sizeof *z->e, cmp_entry);
}

mp_status mp__zip_check_crc(const char *file, const mp__zip *z, const mp__zip_entry *e) {
    uLong c = crc32(0L, Z_NULL, 0);
    const uint8_t *p = z->base + e->offset;
    uint64_t left = e->size;
    while (left) { /* zlib takes a uInt length */
        uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
        c = crc32(c, p, k);
        p += k;
        left -= k;
    }
    if ((uint32_t)c != e->crc32) {
        int nl = e->name_len > 200 ? 200 : (int)e->name_len;
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: ZIP entry %.*s: CRC-32 %08x, directory says %08x (damaged file)",
                        file, nl, e->name, (unsigned)c, (unsigned)e->crc32);
    }
    return MP_OK;
}
