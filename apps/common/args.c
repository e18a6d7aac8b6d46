/* args.c - command-line scanning shared by every `modelpool` command (see app.h for the loop). */
#include "common/app.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

mp_app_args mp_app_args_begin(const char *cmd, int argc, char **argv, void (*usage)(FILE *f)) {
    return (mp_app_args){.cmd = cmd, .argc = argc, .argv = argv, .usage = usage, .i = 0};
}

/* cmd "" is the top level: "modelpool: ...", "try 'modelpool --help'". */
static void hint(const char *cmd) { fprintf(stderr, "try 'modelpool %s%s--help'\n", cmd, *cmd ? " " : ""); }

int mp_app_usage_error(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "modelpool%s%s: ", *cmd ? " " : "", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    hint(cmd);
    return MP_APP_EXIT_USAGE;
}

static void finish(mp_app_args *a, int rc) {
    a->finished = 1;
    a->rc = rc;
}

int mp_app_args_next(mp_app_args *a) {
    if (a->finished || ++a->i >= a->argc) return 0;
    a->arg = a->argv[a->i];
    if (a->positional_only) return 1;
    if (!strcmp(a->arg, "--")) {
        a->positional_only = 1;
        return mp_app_args_next(a);
    }
    if (!strcmp(a->arg, "--help") || !strcmp(a->arg, "-h")) {
        a->usage(stdout);
        finish(a, 0);
        return 0;
    }
    if (!strcmp(a->arg, "--version")) {
        printf("modelpool %s\n", mp_version());
        finish(a, 0);
        return 0;
    }
    return 1;
}

int mp_app_positional(const mp_app_args *a) {
    return a->positional_only || a->arg[0] != '-' || a->arg[1] == '\0';
}

/* Does the current argument name this option, as "--name" or "--name=value"? */
static int is(const mp_app_args *a, const char *name) {
    if (a->positional_only) return 0;
    size_t n = strlen(name);
    return !strncmp(a->arg, name, n) && (a->arg[n] == '\0' || a->arg[n] == '=');
}

/* The value of the current option: after '=', or the next argument (which may start with '-', as
 * a negative number does). NULL, with the usage error printed, when there is none. */
static const char *value(mp_app_args *a, const char *name) {
    const char *eq = strchr(a->arg, '=');
    if (eq) return eq + 1;
    if (a->i + 1 < a->argc) return a->argv[++a->i];
    mp_app_usage_error(a->cmd, "%s needs a value", name);
    finish(a, MP_APP_EXIT_USAGE);
    return NULL;
}

int mp_app_flag(mp_app_args *a, const char *name) {
    if (!is(a, name)) return 0;
    if (strchr(a->arg, '=')) {
        mp_app_usage_error(a->cmd, "%s takes no value", name);
        finish(a, MP_APP_EXIT_USAGE);
    }
    return 1;
}

int mp_app_opt_str(mp_app_args *a, const char *name, const char **out) {
    if (!is(a, name)) return 0;
    const char *v = value(a, name);
    if (v) *out = v;
    return 1;
}

/* A value outside an option's range ends the scan with one line saying what was expected. */
static void bad_number(mp_app_args *a, const char *name, const char *kind, double lo, double hi, const char *v) {
    mp_app_usage_error(a->cmd, "%s: expected %s in [%.15g, %.15g], got '%s'", name, kind, lo, hi, v);
    finish(a, MP_APP_EXIT_USAGE);
}

int mp_app_opt_long(mp_app_args *a, const char *name, long lo, long hi, long *out) {
    if (!is(a, name)) return 0;
    const char *v = value(a, name);
    if (v && !mp_app_parse_long(v, lo, hi, out)) bad_number(a, name, "an integer", (double)lo, (double)hi, v);
    return 1;
}

int mp_app_opt_int(mp_app_args *a, const char *name, int lo, int hi, int *out) {
    long v = *out;
    int matched = mp_app_opt_long(a, name, lo, hi, &v);
    *out = (int)v;
    return matched;
}

int mp_app_opt_double(mp_app_args *a, const char *name, double lo, double hi, double *out) {
    if (!is(a, name)) return 0;
    const char *v = value(a, name);
    if (v && !mp_app_parse_double(v, lo, hi, out)) bad_number(a, name, "a number", lo, hi, v);
    return 1;
}

void mp_app_unknown(mp_app_args *a) {
    if (a->finished) return;
    if (mp_app_positional(a))
        mp_app_usage_error(a->cmd, "unexpected argument '%s'", a->arg);
    else
        mp_app_usage_error(a->cmd, "unknown option '%s'", a->arg);
    finish(a, MP_APP_EXIT_USAGE);
}

int mp_app_parse_long(const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || end == s || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int mp_app_parse_double(const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || end == s || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}
