/* json.c - small JSON files read whole, and typed fields whose errors name the file and the key
 * (config.json, the tokenizer files, decoding.json). Part of core: calls only jansson and libc.
 * Sizes are capped: a hostile file bounds what it can make us allocate. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Config and tokenizer files are a few kB. */
#define JSON_FILE_MAX ((size_t)64 << 20)

/* dir + "/" + name, malloc'ed; NULL when out of memory. */
char *mp__path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

const char *mp__json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE: case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

/* Read a whole regular file of at most JSON_FILE_MAX bytes into *buf (malloc'ed, *n bytes). A
 * missing optional file gives MP_OK with *buf = NULL. */
static mp_status read_small_file(const char *path, int optional, char **buf, size_t *n) {
    *buf = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && optional) return MP_OK;
        return mp__fail(MP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    mp_status st = MP_OK;
    struct stat sb;
    size_t size = 0, got = 0;
    char *p = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mp__fail(MP_ERR_IO, "%s: not a regular file", path);
    } else if ((uint64_t)sb.st_size > JSON_FILE_MAX) {
        st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: file too large (%lld bytes)", path, (long long)sb.st_size);
    } else if (!(p = malloc((size = (size_t)sb.st_size) ? size : 1))) {
        st = mp__fail(MP_ERR_NOMEM, "%s: out of memory", path);
    } else {
        while (got < size) {
            ssize_t r = read(fd, p + got, size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != size) st = mp__fail(MP_ERR_IO, "%s: short read", path);
    }
    close(fd);
    if (st != MP_OK) {
        free(p);
        return st;
    }
    *buf = p;
    *n = size;
    return MP_OK;
}

/* Parse a JSON file whose top level must be an object. A missing optional file gives MP_OK with
 * *out = NULL; a missing required file is MP_ERR_IO. */
mp_status mp__json_load(const char *path, int optional, json_t **out) {
    *out = NULL;
    char *buf;
    size_t n;
    mp_status st = read_small_file(path, optional, &buf, &n);
    if (st != MP_OK || !buf) return st;
    json_error_t err;
    json_t *root = json_loadb(buf, n, 0, &err);
    free(buf);
    if (!root)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: invalid JSON at line %d column %d: %s", path, err.line,
                        err.column, err.text);
    if (!json_is_object(root)) {
        st = mp__fail(MP_ERR_MODEL_FORMAT, "%s: top level is a JSON %s, expected an object", path,
                      mp__json_kind(root));
        json_decref(root);
        return st;
    }
    *out = root;
    return MP_OK;
}

/* ---- typed fields: absent or null -> default; wrong type or range -> error naming both ----------- */

mp_status mp__json_int(const char *file, const json_t *o, const char *key, long long def, long long lo,
                       long long hi, int *out) {
    const json_t *v = json_object_get(o, key);
    long long x = def;
    if (v && !json_is_null(v)) {
        if (json_is_integer(v)) {
            x = json_integer_value(v);
        } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                   fabs(json_real_value(v)) < 9e15) {
            x = (long long)json_real_value(v); /* 16000.0 written by some exporters */
        } else {
            return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected an integer, got a %s", file, key, mp__json_kind(v));
        }
    }
    if (x < lo || x > hi)
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: value %lld out of range [%lld, %lld]", file, key, x, lo, hi);
    *out = (int)x;
    return MP_OK;
}

mp_status mp__json_bool(const char *file, const json_t *o, const char *key, int def, int *out) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return MP_OK;
    if (!json_is_boolean(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected true or false, got a %s", file, key, mp__json_kind(v));
    *out = json_is_true(v);
    return MP_OK;
}

mp_status mp__json_str(const char *file, const json_t *o, const char *key, const char *def, const char **out) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return MP_OK;
    if (!json_is_string(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected a string, got a %s", file, key, mp__json_kind(v));
    *out = json_string_value(v);
    return MP_OK;
}

mp_status mp__json_real(const char *file, const json_t *o, const char *key, double def, double *out) {
    const json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return MP_OK;
    if (!json_is_number(v))
        return mp__fail(MP_ERR_MODEL_FORMAT, "%s: %s: expected a number, got a %s", file, key, mp__json_kind(v));
    *out = json_number_value(v);
    return MP_OK;
}

