/* torch-dump.c - print every tensor of a pytorch_model.bin as the reader sees it, one line each:
 * "NAME NDIM D0 D1 ... : V0 V1 ..." (values as fp32, %.9g, row-major). Used by test-torch-views.py
 * to compare the reader with torch.load itself. Usage: torch-dump FILE */
#include "engine/torch-ckpt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int fd = open(argv[1], O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size == 0) return 2;
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return 2;
    mp__pt_file f;
    if (mp__pt_open_fd(argv[1], p, (size_t)sb.st_size, fd, &f) != MP_OK) {
        printf("ERR %s\n", mp_last_error());
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < f.n && !rc; i++) {
        const mp__pt_tensor *t = &f.t[i];
        float *x = malloc(t->numel * sizeof *x + sizeof *x);
        if (!x || mp__pt_read_f32(argv[1], t, x) != MP_OK) {
            printf("ERR %s\n", mp_last_error());
            rc = 1;
        } else {
            printf("%s %d", t->name, t->ndim);
            for (int d = 0; d < t->ndim; d++) printf(" %lld", (long long)t->shape[d]);
            printf(" :");
            for (size_t k = 0; k < t->numel; k++) printf(" %.9g", x[k]);
            printf("\n");
        }
        free(x);
    }
    mp__pt_close(&f);
    munmap(p, (size_t)sb.st_size);
    close(fd);
    return rc;
}
