/* fuzz-audio.c - libFuzzer target over the whole decode path: format detection, libsndfile,
 * AMR-NB, raw GSM, mixing and soxr resampling (mp_audio_load_memory). The first byte picks the
 * configuration (raw formats, channel pick, target rate) so the raw paths are reached too.
 * Build: CC=clang cmake -DMP_BUILD_FUZZ=ON -DMP_SANITIZE_ADDRESS=ON ...; run: fuzz-audio -max_total_time=30 */
#include "modelpool.h"

#include <stddef.h>
#include <stdint.h>

/* LeakSanitizer reads this hook (when built with ASan): libsndfile 1.2.0 leaks its vorbis_info when
 * a damaged Ogg/Vorbis stream fails to open (sf_open_virtual returns NULL, so there is no handle
 * to close). Upstream's leak, not ours; everything else stays checked. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:vorbis_info_init\n"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mp_audio_config cfg = mp_audio_default_config();
    /* A bounded duration keeps each input fast: a header may claim hours of audio. */
    cfg.max_duration_s = 30.0;
    if (size > 0) {
        uint8_t sel = data[0];
        static const int rates[4] = {16000, 8000, 22050, 48000};
        cfg.target_rate = rates[sel & 3];
        cfg.channel = (sel >> 2) & 1 ? 0 : -1;
        if ((sel >> 3) & 1) {
            cfg.raw_format = (mp_raw_format)(1 + ((sel >> 4) % 3));
            cfg.raw_rate = (sel >> 6) & 1 ? 8000 : 44100;
            cfg.raw_channels = 1 + ((sel >> 7) & 1);
        }
        data++;
        size--;
    }
    mp_audio *a = NULL;
    if (mp_audio_load_memory(data, size, &cfg, &a) == MP_OK) {
        size_t n = 0;
        const float *x = mp_audio_samples(a, &n);
        volatile float sink = 0;
        for (size_t i = 0; i < n; i += 97) sink += x[i]; /* touch the output */
        (void)sink;
        (void)mp_audio_source(a);
    }
    mp_audio_free(a);
    return 0;
}
