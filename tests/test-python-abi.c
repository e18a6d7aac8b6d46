/* test-python-abi.c - print the size and field offsets of every public struct the Python binding
 * declares with ctypes (python/modelpool/_lib.py), as JSON; python/tests/test_abi.py compares. */
#include "modelpool.h"

#include <stddef.h>
#include <stdio.h>

#define BEGIN(T) printf("%s\"" #T "\": {\"size\": %zu, \"fields\": {", first_struct ? "" : ", ", sizeof(T)), \
                 first_struct = 0, first_field = 1
#define F(T, f) printf("%s\"" #f "\": %zu", first_field ? "" : ", ", offsetof(T, f)), first_field = 0
#define END() printf("}}")

int main(void) {
    int first_struct = 1, first_field = 1;
    printf("{");
    BEGIN(mp_model_info);
    F(mp_model_info, architecture); F(mp_model_info, dtype); F(mp_model_info, path);
    F(mp_model_info, n_params); F(mp_model_info, weight_bytes); F(mp_model_info, vocab_size);
    F(mp_model_info, hidden_size); F(mp_model_info, n_layers); F(mp_model_info, n_heads);
    F(mp_model_info, intermediate_size); F(mp_model_info, n_conv_layers); F(mp_model_info, frame_stride);
    F(mp_model_info, receptive_field); F(mp_model_info, sample_rate); F(mp_model_info, stable_layer_norm);
    F(mp_model_info, group_norm); F(mp_model_info, has_lexicon);
    END();
    BEGIN(mp_model_config);
    F(mp_model_config, use_mmap); F(mp_model_config, language); F(mp_model_config, dtype);
    END();
    BEGIN(mp_hotword);
    F(mp_hotword, phrase); F(mp_hotword, boost);
    END();
    BEGIN(mp_request_config);
    F(mp_request_config, decoder); F(mp_request_config, beam_width); F(mp_request_config, lexicon);
    F(mp_request_config, use_model_lexicon); F(mp_request_config, hotwords); F(mp_request_config, n_hotwords);
    F(mp_request_config, lm); F(mp_request_config, lm_alpha); F(mp_request_config, lm_beta);
    F(mp_request_config, lm_unk_score); F(mp_request_config, timeout_ms); F(mp_request_config, keep_logits);
    F(mp_request_config, chunk_length_s); F(mp_request_config, stride_length_s);
    F(mp_request_config, progress_fn); F(mp_request_config, progress_user_data);
    END();
    BEGIN(mp_word);
    F(mp_word, word); F(mp_word, start_s); F(mp_word, end_s); F(mp_word, confidence);
    END();
    BEGIN(mp_audio_config);
    F(mp_audio_config, raw_format); F(mp_audio_config, raw_rate); F(mp_audio_config, raw_channels);
    F(mp_audio_config, channel); F(mp_audio_config, target_rate); F(mp_audio_config, max_duration_s);
    END();
    BEGIN(mp_pool_config);
    F(mp_pool_config, n_workers); F(mp_pool_config, queue_capacity); F(mp_pool_config, default_timeout_ms);
    F(mp_pool_config, preload); F(mp_pool_config, n_threads_per_worker); F(mp_pool_config, stuck_lease_s);
    F(mp_pool_config, wait_warning_s); F(mp_pool_config, weight_copies); F(mp_pool_config, max_scratch_bytes);
    END();
    BEGIN(mp_live_config);
    F(mp_live_config, partial_interval_s); F(mp_live_config, left_context_s); F(mp_live_config, right_context_s);
    F(mp_live_config, endpoint_silence_s); F(mp_live_config, max_utterance_s); F(mp_live_config, final_pass);
    F(mp_live_config, final_skip_confidence); F(mp_live_config, feature_cache);
    END();
    BEGIN(mp_live_stats);
    F(mp_live_stats, audio_s); F(mp_live_stats, committed_s); F(mp_live_stats, compute_s);
    F(mp_live_stats, computed_audio_s); F(mp_live_stats, wait_s); F(mp_live_stats, steps); F(mp_live_stats, finals);
    F(mp_live_stats, buffered_s); F(mp_live_stats, endpoints_dropped); F(mp_live_stats, final_passes_skipped);
    F(mp_live_stats, feature_audio_s); F(mp_live_stats, cached_s); F(mp_live_stats, cache_resets);
    END();
    BEGIN(mp_pool_stats);
    F(mp_pool_stats, pool_size); F(mp_pool_stats, total_requests); F(mp_pool_stats, avg_wait_time);
    F(mp_pool_stats, available_models); F(mp_pool_stats, busy_models); F(mp_pool_stats, max_wait_time);
    F(mp_pool_stats, wait_p50); F(mp_pool_stats, wait_p95); F(mp_pool_stats, wait_p99);
    F(mp_pool_stats, service_p50); F(mp_pool_stats, service_p95); F(mp_pool_stats, service_p99);
    F(mp_pool_stats, queue_depth); F(mp_pool_stats, completed); F(mp_pool_stats, failed);
    F(mp_pool_stats, rejected); F(mp_pool_stats, timed_out); F(mp_pool_stats, stuck_leases);
    F(mp_pool_stats, stuck_now); F(mp_pool_stats, audio_seconds); F(mp_pool_stats, busy_seconds);
    F(mp_pool_stats, real_time_factor); F(mp_pool_stats, uptime_s); F(mp_pool_stats, wait_warning);
    F(mp_pool_stats, weight_bytes); F(mp_pool_stats, scratch_bytes); F(mp_pool_stats, n_workers_loaded);
    F(mp_pool_stats, worker_requests); F(mp_pool_stats, worker_busy_s); F(mp_pool_stats, wait_le);
    F(mp_pool_stats, wait_count); F(mp_pool_stats, wait_sum_s);
    END();
    /* array lengths the Python declarations repeat */
    printf(", \"constants\": {\"MP_STATS_MAX_WORKERS\": %d, \"MP_WAIT_BUCKETS\": %d}", MP_STATS_MAX_WORKERS,
           MP_WAIT_BUCKETS);
    printf("}\n");
    return 0;
}
