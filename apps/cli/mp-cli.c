/* mp-cli.c - the `modelpool` command: a thin client of modelpool.h. Subcommands: transcribe
 * (cmd-transcribe.c), info (cmd-info.c), bench (cmd-bench.c), convert (cmd-convert.c), serve
 * (apps/server, through server.h). */
#include "cli/cli.h"
#ifdef MP_HAVE_SERVER
#include "server/server.h"
#endif

#include <string.h>

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: modelpool <command> [options]\n"
            "\n"
            "commands:\n"
            "  transcribe   transcribe audio files to text\n"
            "  info         describe a model\n"
            "  bench        measure pool throughput, latency and memory\n"
            "  convert      rewrite a model directory (e.g. pytorch_model.bin) as model.safetensors\n"
#ifdef MP_HAVE_SERVER
            "  serve        HTTP service (OpenAI-compatible /v1/audio/transcriptions, /metrics, /health)\n"
#endif
            "\n"
            "`modelpool <command> --help` describes each. Without --model the embedded model is used\n"
            "(%s; MODELPOOL_MODEL overrides).\n"
            "--language LANG, with any command, picks a multilingual model's vocabulary (a vocab.json\n"
            "holding {\"en\": {...}, \"vi\": {...}}).\n"
            "\n"
            "Examples:\n"
            "  modelpool transcribe samples/phone-gsm.wav\n"
            "  modelpool transcribe --beam 16 --format json calls/*.wav\n"
            "  modelpool convert DIR OUT --dtype f16\n",
            mp_app_default_model());
    mp_app_print_exit_codes(f);
}

int main(int argc, char **argv) {
    mp_cli_openmp_passive(argv);
    argc = mp_app_take_language(argc, argv);
    if (argc < 0) return MP_APP_EXIT_USAGE;
    if (argc < 2) return mp_app_usage_error("", "a command is needed");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("modelpool %s\n", mp_version());
        return 0;
    }
    if (!strcmp(cmd, "transcribe")) return mp_cli_transcribe(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return mp_cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return mp_cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return mp_cli_convert(argc - 1, argv + 1);
#ifdef MP_HAVE_SERVER
    if (!strcmp(cmd, "serve")) return mp_server_main(argc - 1, argv + 1);
#endif
    return mp_app_usage_error("", "unknown command '%s'", cmd);
}
