/*
 * loader.h - the steps of mp_model_load() and the state they share (engine-private).
 *
 * model.c runs them in order: config.c (config.json, preprocessor_config.json -> m->hp),
 * a tensor reader (tensors.h), weights.c (tensors -> the model's layers), tokenizer.c
 * (vocab.json and the special-token files -> m->tokens). Each step fills its part of the model
 * and names the file and the field or tensor when it fails.
 */
#ifndef MP_ENGINE_LOADER_H
#define MP_ENGINE_LOADER_H

#include "internal.h"
#include "tensors.h"

/* Any single hyper-parameter above this is not a speech model; it also keeps products of two
 * of them far from int overflow. */
#define MP_DIM_MAX (1 << 20)

typedef struct mp__loader {
    mp_model *m;
    const char *dir;
    char *config_path, *pre_path, *st_path;
    const char *prefix;               /* tensor name prefix: "wav2vec2." or "hubert." */
    int cfg_pad_id;                   /* config.json pad_token_id (the blank when vocab lacks <pad>) */
    mp__tensors *ts;                  /* the weight file's tensors (moved to the model on success) */
    unsigned dtypes_used;             /* bit per mp__dtype among claimed tensors */
} mp__loader;

/* config.c: config.json into m->hp, m->arch and L->prefix; then preprocessor_config.json. */
mp_status mp__config_load(mp__loader *L);
mp_status mp__preprocessor_load(mp__loader *L);

/* weights.c: claim every tensor the configuration needs from L->ts (shapes checked against
 * m->hp), then refuse any tensor left over that is not a known training-only one. */
mp_status mp__weights_bind(mp__loader *L);

/* tokenizer.c: vocab.json, added_tokens.json, tokenizer_config.json, special_tokens_map.json. */
mp_status mp__tokenizer_load(mp__loader *L);

#endif /* MP_ENGINE_LOADER_H */
