#!/usr/bin/env bash
# Install what modelpool needs on Debian 12, with apt-get (run as root, as CI does).
#   scripts/install-deps.sh          build + run: compiler, CMake, OpenBLAS, jansson, libsndfile, soxr, AMR-NB, microhttpd, scdoc
#   scripts/install-deps.sh --test   also what the tests use: torch/torchaudio references, sox, TTS, clang (fuzzing, sanitizers),
#                                    haproxy, promtool, systemd-analyze (deploy/)
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config
  libopenblas-dev libopenblas0-pthread    # BLAS for the engine (and for Debian's torch, see REFERENCE.md)
  libjansson-dev                          # config.json / vocab.json / safetensors headers
  libsndfile1-dev                         # WAV (PCM, G.711, GSM 06.10, ADPCM), FLAC, OGG, MP3
  libsoxr-dev                             # resampling, as librosa does
  libopencore-amrnb-dev                   # AMR-NB
  zlib1g-dev                              # CRC-32 of pytorch_model.bin (ZIP) entries
  libmicrohttpd-dev                       # modelpool serve
  libdnnl-dev                             # oneDNN: fp32 GEMMs (cpuid dispatch) and the int8 path
  scdoc                                   # the man page modelpool(1) (docs/modelpool.1.scd)
  nettle-dev                              # SHA-1 + base64 of the WebSocket handshake (serve, live calls)
)
test_pkgs=(
  python3 python3-numpy python3-torch python3-torchaudio   # reference parity, training pipeline
  python3-pytest python3-pip python3-setuptools python3-wheel   # Python binding: its tests, `pip install ./python`
  sox libsox-fmt-all                      # encode telephony formats for tests
  espeak-ng flite festival festvox-kallpc16k              # synthesized speech
  festvox-kdlpc16k festvox-us-slt-hts     # more festival voices for tools/train (digits model)
  clang libclang-rt-14-dev                # libFuzzer, sanitizer runtimes
  curl                                    # server tests
  gnuplot-nox                             # bench/peers/run.sh plot
  man-db                                  # install test: the installed man page renders
  libmp3lame-dev                          # install test: sndfile.pc lists -lmp3lame for static linking
  haproxy                                 # scale-out test: the real balancer with deploy/haproxy.cfg
  prometheus                              # promtool: deploy/prometheus.yml and alerts.yml, rule unit tests
  systemd                                 # systemd-analyze verify deploy/modelpool.service
  python3-websockets                      # vosk-protocol client of the live-call tests
  iproute2                                # ss: drain_attack looks for orphaned server sockets
)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages the tests use (the OpenAI SDK as a real client of `modelpool serve`), pinned by the lock file.
if [ "${1:-}" = "--test" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -d "$here/tests/server-js/node_modules/openai" ]; then
    (cd "$here/tests/server-js" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
