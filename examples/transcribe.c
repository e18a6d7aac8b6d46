/* transcribe.c - the smallest complete use of libmodelpool: load a model, make a pool,
 * transcribe one audio file, print the text. Usage: example-transcribe MODEL_DIR FILE */
#include <modelpool.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR AUDIO_FILE\n", argv[0]);
        return 2;
    }
    mp_model *model = NULL;
    mp_pool *pool = NULL;
    mp_result *res = NULL;
    mp_status st = mp_model_load(argv[1], NULL, &model);
    if (st == MP_OK) st = mp_pool_create(model, NULL, &pool);
    if (st == MP_OK) st = mp_pool_transcribe_file(pool, argv[2], NULL, NULL, &res);
    if (st == MP_OK)
        printf("%s\n", mp_result_text(res));
    else
        fprintf(stderr, "error: %s: %s\n", mp_strerror(st), mp_last_error());
    mp_result_free(res);
    mp_pool_free(pool);
    mp_model_free(model);
    return st == MP_OK ? 0 : 1;
}
