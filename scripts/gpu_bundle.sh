#!/usr/bin/env bash
# Packs everything a GPU host WITHOUT network needs to build augur with CUDA, run the
# gpu-labelled tests and run `augur eval` on the GPU, into one tarball:
#
#   src/       the source tree (git archive of HEAD, plus uncommitted changes to tracked files)
#   deps/      the files of the Debian packages augur builds against (Abseil, HDF5, Eigen,
#              nlohmann-json, GoogleTest, SentencePiece, cmake, ninja) and every library
#              package they pull in, copied from THIS machine's installed packages (dpkg -L;
#              no download). glibc is not copied: the host's must be >= this machine's.
#   models/    optional (--run DIR): the target, drafter-*/ checkpoints and corpus.h5 of a
#              quickstart run directory, for the evaluation
#   run.sh     on the GPU host: build (CUDA on when nvcc is found), ctest -L gpu, augur info,
#              augur eval greedy and T=0.8 on the GPU, plots; everything lands in $OUT
#
# LibTorch is NOT bundled: the GPU host's own Python provides it (torch 2.11.0+cu130; run.sh
# passes -DAUGUR_PYTHON, or set AUGUR_PYTHON=/path/to/python).
#
#   scripts/gpu_bundle.sh [--run runs/qs] [--toolchain] [--out dist/augur-gpu.tar.gz]
#   # on the host:  tar xzf augur-gpu.tar.gz && OUT=/some/dir augur-gpu/run.sh
#
# --toolchain also bundles gcc/g++ 12 and binutils (for an image with no compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_TAR=dist/augur-gpu.tar.gz
RUN_SRC=""
TOOLCHAIN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_TAR=$2; shift 2 ;;
    --run) RUN_SRC=$2; shift 2 ;;
    --toolchain) TOOLCHAIN=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu_bundle: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

PKGS=(libabsl-dev libhdf5-dev libeigen3-dev nlohmann-json3-dev libgtest-dev libsentencepiece-dev
      cmake cmake-data ninja-build pkgconf pkg-config)
[ "$TOOLCHAIN" = 1 ] && PKGS+=(gcc-12 g++-12 cpp-12 libstdc++-12-dev libgcc-12-dev binutils
                               binutils-x86-64-linux-gnu libc6-dev linux-libc-dev libc-dev-bin)
# Present on any host that can run the host's own Python, or must come from the host.
SKIP=" libc6 libc-bin libc6-dev debconf dpkg perl-base tzdata "
[ "$TOOLCHAIN" = 1 ] && SKIP=" libc6 libc-bin debconf dpkg perl-base tzdata "

# Dependency closure over installed packages (Depends and Pre-Depends; alternatives: the
# first installed one).
declare -A seen=()
queue=()
for p in "${PKGS[@]}"; do queue+=("$p"); done
while [ ${#queue[@]} -gt 0 ]; do
  p=${queue[0]}; queue=("${queue[@]:1}")
  p=${p%%:*}
  [ -n "${seen[$p]:-}" ] && continue
  case "$SKIP" in *" $p "*) continue ;; esac
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    # A virtual package or an alternative that is not installed here: skip it.
    continue
  fi
  seen[$p]=1
  deps=$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" | tr ',' '\n')
  while IFS= read -r alt; do
    alt=$(echo "$alt" | sed 's/([^)]*)//g; s/:any//g; s/^ *//; s/ *$//')
    [ -z "$alt" ] && continue
    pick=""
    IFS='|' read -ra choices <<< "$alt"
    for c in "${choices[@]}"; do
      c=$(echo "$c" | xargs)
      if dpkg-query -W -f='${Status}' "$c" 2>/dev/null | grep -q "ok installed"; then pick=$c; break; fi
    done
    [ -n "$pick" ] && queue+=("$pick")
  done <<< "$deps"
done

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
B="$STAGE/augur-gpu"
mkdir -p "$B/src" "$B/deps" "$B/models"

echo "gpu_bundle: source tree"
ref=$(git stash create 2>/dev/null || true)
git archive --format=tar "${ref:-HEAD}" | tar -x -C "$B/src"

echo "gpu_bundle: ${#seen[@]} Debian packages from this machine: ${!seen[*]}"
for p in "${!seen[@]}"; do
  dpkg -L "$p" | while IFS= read -r f; do
    case "$f" in /usr/share/doc/*|/usr/share/man/*|/usr/share/info/*|/usr/share/lintian/*) continue ;; esac
    # Merged-usr's top-level links (/lib -> usr/lib) are not copied; other links are.
    case "$f" in /lib|/lib32|/lib64|/libx32|/bin|/sbin) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then echo "${f#/}"; fi
  done
done | sort -u > "$STAGE/files.txt"
# Merged-usr: /lib, /bin, /sbin are links into /usr; store everything under usr/.
tar -C / --transform 's,^lib/,usr/lib/,;s,^bin/,usr/bin/,;s,^sbin/,usr/sbin/,' -cf - -T "$STAGE/files.txt" |
  tar -C "$B/deps" -xf -
# pkg-config files name prefix=/usr; make them relative to where they now lie.
find "$B/deps" -name '*.pc' -print0 | xargs -0 -r sed -i 's|^prefix=/usr$|prefix=${pcfiledir}/../../..|'
find "$B/deps/usr/share/pkgconfig" -name '*.pc' -print0 2>/dev/null |
  xargs -0 -r sed -i 's|^prefix=${pcfiledir}/../../..$|prefix=${pcfiledir}/../..|'
# HDF5's compiler wrappers hold absolute /usr paths; without them FindHDF5 searches HDF5_ROOT.
rm -f "$B"/deps/usr/bin/h5cc "$B"/deps/usr/bin/h5c++ "$B"/deps/usr/bin/h5fc
printf '%s\n' "${!seen[@]}" | sort > "$B/deps/PACKAGES"
cp /etc/os-release "$B/deps/BUILT_ON_OS_RELEASE"
ldd --version | head -1 > "$B/deps/BUILT_ON_GLIBC"

if [ -n "$RUN_SRC" ]; then
  echo "gpu_bundle: models from $RUN_SRC"
  cp -r "$RUN_SRC/target" "$B/models/target"
  for d in "$RUN_SRC"/drafter-*/ "$RUN_SRC"/baseline/; do
    [ -f "$d/config.json" ] && cp -r "${d%/}" "$B/models/$(basename "$d")"
  done
  [ -f "$RUN_SRC/corpus.h5" ] && cp "$RUN_SRC/corpus.h5" "$B/models/corpus.h5"
  rm -f "$B"/models/*/trainer_state.json "$B"/models/*/optimizer.* 2>/dev/null || true
fi

cat > "$B/run.sh" <<'RUNEOF'
#!/usr/bin/env bash
# On the GPU host (no network): build augur against this bundle's deps and the host
# Python's torch, run the gpu tests and the evaluation; results in $OUT (default ./out).
set -uo pipefail
B=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$B/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
D="$B/deps"
ML=x86_64-linux-gnu
export PATH="$D/usr/bin:$PATH"
export LD_LIBRARY_PATH="$D/usr/lib/$ML:$D/usr/lib/$ML/hdf5/serial:${LD_LIBRARY_PATH:-}"
export PKG_CONFIG_PATH="$D/usr/lib/$ML/pkgconfig:$D/usr/share/pkgconfig"
PY=${AUGUR_PYTHON:-$(command -v python3)}
echo "== host: $(uname -a)"; echo "glibc: $(ldd --version | head -1); bundle built with $(cat "$D/BUILT_ON_GLIBC")"
"$PY" -c 'import torch,sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' || {
  echo "run.sh: $PY cannot import torch; set AUGUR_PYTHON=/path/to/python with torch"; exit 1; }
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
CUDA=OFF
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
if [ -n "$NVCC" ]; then CUDA=ON; export PATH="$(dirname "$NVCC"):$PATH"; else
  echo "run.sh: no nvcc: building without augur's own .cu kernels (torch's CUDA still runs the eval on the GPU)"; fi
BUILD=${BUILD_DIR:-$B/build}
CC_ARGS=()
command -v g++ >/dev/null || { [ -x "$D/usr/bin/g++-12" ] && CC_ARGS=(-DCMAKE_CXX_COMPILER="$D/usr/bin/g++-12" -DCMAKE_C_COMPILER="$D/usr/bin/gcc-12"); }
echo "== configure (AUGUR_CUDA=$CUDA, python $PY)"
cmake -S "$B/src" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAUGUR_CUDA=$CUDA \
  -DAUGUR_PYTHON="$PY" -DCMAKE_PREFIX_PATH="$D/usr;$D/usr/lib/$ML/cmake" \
  -DHDF5_ROOT="$D/usr/lib/$ML/hdf5/serial" -DHDF5_INCLUDE_DIRS="$D/usr/include/hdf5/serial" \
  -DEigen3_DIR="$D/usr/share/eigen3/cmake" "${CC_ARGS[@]}" 2>&1 | tail -20
[ "${PIPESTATUS[0]}" = 0 ] || { echo "run.sh: configure failed"; exit 1; }
echo "== build"
cmake --build "$BUILD" -j"$(nproc)" || { echo "run.sh: build failed"; exit 1; }
rc=0
echo "== ctest -L gpu"
ctest --test-dir "$BUILD" -L gpu --output-on-failure 2>&1 | tee "$OUT/ctest_gpu.log" || rc=1
"$BUILD/bin/augur" info --cuda-self-test > "$OUT/augur_info.txt" 2>&1 || rc=1
M="$B/models"
if [ -d "$M/target" ] && [ -f "$M/corpus.h5" ]; then
  DRAFTERS=(--drafter prompt-lookup)
  for d in "$M"/drafter-*/ "$M"/baseline/; do [ -f "$d/config.json" ] && DRAFTERS+=(--drafter "ar:${d%/}"); done
  for t in 0 0.8; do
    echo "== augur eval on cuda, temperature $t"
    "$BUILD/bin/augur" eval --device cuda --target "$M/target" "${DRAFTERS[@]}" --prompts "$M/corpus.h5" \
      --num-prompts ${EVAL_PROMPTS:-8} --prompt-len 64 --max-new 128 --gamma 4 --temperature $t --check \
      --report "$OUT/report_T$t" || rc=1
    "$PY" "$B/src/scripts/plot_report.py" "$OUT/report_T$t" || echo "run.sh: no plots (matplotlib missing?)"
  done
  echo "== augur bench on cuda"
  "$BUILD/bin/augur" bench --device cuda --target "$M/target" "${DRAFTERS[@]}" --prompts "$M/corpus.h5" \
    --num-prompts 4 --gammas 1,2,4,6,8 --report "$OUT/bench" || rc=1
  "$PY" "$B/src/scripts/plot_report.py" "$OUT/bench" || true
else
  echo "run.sh: no models/ in the bundle (make it with --run RUN_DIR): evaluation skipped"
fi
echo "run.sh: finished with rc=$rc; results in $OUT"
exit $rc
RUNEOF
chmod +x "$B/run.sh"

mkdir -p "$(dirname "$OUT_TAR")"
tar -C "$STAGE" -czf "$OUT_TAR" augur-gpu
echo "gpu_bundle: $OUT_TAR ($(du -h "$OUT_TAR" | cut -f1)); on the GPU host: tar xzf $(basename "$OUT_TAR") && OUT=/dir augur-gpu/run.sh"
