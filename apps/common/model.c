/* model.c - which model a command uses: --model DIR, --arch NAME (random weights), or the default. */
#include "common/app.h"

#include <stdlib.h>

const char *mp_app_default_model(void) {
    const char *env = getenv("MODELPOOL_MODEL");
    if (env && *env) return env;
#ifdef MP_DEFAULT_MODEL_DIR
    return MP_DEFAULT_MODEL_DIR;
#else
    return "models/digits";
#endif
}

mp_status mp_app_load_model(const char *dir, const char *arch, mp_model **out) {
    if (arch) return mp_model_create_random(arch, 1234, out);
    return mp_model_load(dir ? dir : mp_app_default_model(), NULL, out);
}
