#!/usr/bin/env bash
# Builds llama.cpp's command-line tools, the CPU peer of scripts/bench_peers.sh, from the same
# llama.cpp source that setup.sh's llama-cpp-python vendors (LLAMA_CPP_VERSION in
# scripts/setup.sh; the PyPI sdist carries it in vendor/llama.cpp). Idempotent: once built, a
# rerun checks the stamp and returns in seconds.
#
#   scripts/build_llamacpp.sh          # -> .venv/llama.cpp/bin/llama-* (AUGUR_LLAMA_CPP_DIR moves it)
#
# Tools: llama-bench, llama-speculative-simple, llama-lookup, llama-quantize, llama-tokenize,
# and llama-completion (plain greedy decoding of a prompt: llama.cpp's target-only baseline on
# the benchmark's own prompts). The source tree stays in .venv/llama.cpp/src
# (convert_hf_to_gguf.py and its gguf-py).
#
# Never a weakened peer: CMake Release, every vector extension this CPU has ON, AMX OFF (this
# VM advertises AMX on some hosts but faults with SIGILL on tile instructions), OpenMP ON,
# llamafile sgemm and Q4_0 repacking at their defaults (ON). On the 2-core AMD EPYC dev VM
# (2026-12-02) the flags are:
#   -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_CPU=ON -DGGML_OPENMP=ON
#   -DGGML_LLAMAFILE=ON -DGGML_CPU_REPACK=ON -DGGML_CUDA=OFF -DGGML_BLAS=OFF -DGGML_BACKEND_DL=OFF
#   -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON
#   -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF
#   -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON
#   -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON
#   -DGGML_AVX_VNNI=OFF (not on this CPU) -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
# Each GGML_<ISA> comes from /proc/cpuinfo (ON where the CPU lists it, so another machine gets
# its own set); AMX is OFF whatever the CPU says. The flags used: .venv/llama.cpp/build-*/build-flags.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^LLAMA_CPP_VERSION=\([0-9.]*\).*/\1/p' scripts/setup.sh | head -n1)
[ -n "$VERSION" ] || { echo "build_llamacpp: LLAMA_CPP_VERSION not found in scripts/setup.sh" >&2; exit 1; }
DIR=${AUGUR_LLAMA_CPP_DIR:-.venv/llama.cpp}
SRC=$DIR/src-$VERSION
BUILD=$DIR/build-$VERSION
JOBS=${AUGUR_LLAMA_JOBS:-2}
TOOLS=(llama-bench llama-speculative-simple llama-lookup llama-quantize llama-tokenize llama-completion)

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " ${flags#*:} " == *" $1 "* ]]; }
isa() {  # isa GGML_OPTION cpuinfo-flag
  if has "$2"; then echo "-D$1=ON"; else echo "-D$1=OFF"; fi
}
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_CPU=ON -DGGML_OPENMP=ON
  -DGGML_LLAMAFILE=ON -DGGML_CPU_REPACK=ON -DGGML_CUDA=OFF -DGGML_BLAS=OFF -DGGML_BACKEND_DL=OFF
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF
  "$(isa GGML_SSE42 sse4_2)" "$(isa GGML_AVX avx)" "$(isa GGML_AVX2 avx2)" "$(isa GGML_BMI2 bmi2)"
  "$(isa GGML_FMA fma)" "$(isa GGML_F16C f16c)" "$(isa GGML_AVX512 avx512f)"
  "$(isa GGML_AVX512_VBMI avx512vbmi)" "$(isa GGML_AVX512_VNNI avx512_vnni)"
  "$(isa GGML_AVX512_BF16 avx512_bf16)" "$(isa GGML_AVX_VNNI avx_vnni)"
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
want="llama.cpp from llama-cpp-python==$VERSION; ${CMAKE_FLAGS[*]}; ${TOOLS[*]}"

done_already() {
  [ -f "$BUILD/.augur-ok" ] && [ "$(cat "$BUILD/.augur-ok")" = "$want" ] || return 1
  local t
  for t in "${TOOLS[@]}"; do [ -x "$BUILD/bin/$t" ] || return 1; done
}
if done_already; then
  ln -sfn "build-$VERSION/bin" "$DIR/bin"; ln -sfn "src-$VERSION" "$DIR/src"
  echo "build_llamacpp: ok (llama.cpp of llama-cpp-python $VERSION) -> $DIR/bin"
  exit 0
fi

mkdir -p "$DIR"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  sdist=$DIR/llama_cpp_python-$VERSION.tar.gz
  if [ ! -f "$sdist" ]; then
    echo "build_llamacpp: downloading the llama-cpp-python $VERSION sdist (vendored llama.cpp source)"
    tmp=$(mktemp -d "$DIR/.dl.XXXXXX")
    .venv/bin/pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$tmp"
    mv "$tmp/llama_cpp_python-$VERSION.tar.gz" "$sdist"
    rm -rf "$tmp"
  fi
  echo "build_llamacpp: unpacking vendor/llama.cpp from $sdist"
  tmp=$(mktemp -d "$DIR/.src.XXXXXX")
  tar xzf "$sdist" -C "$tmp" "llama_cpp_python-$VERSION/vendor/llama.cpp"
  rm -rf "$SRC"
  mv "$tmp/llama_cpp_python-$VERSION/vendor/llama.cpp" "$SRC"
  rm -rf "$tmp"
fi

echo "build_llamacpp: configuring ($BUILD): ${CMAKE_FLAGS[*]}"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -qx "CMAKE_GENERATOR:INTERNAL=${gen[1]:-Unix Makefiles}" "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD"  # made with another generator
fi
cmake -S "$SRC" -B "$BUILD" "${gen[@]}" "${CMAKE_FLAGS[@]}" >"$DIR/configure.log" 2>&1 \
  || { tail -n 30 "$DIR/configure.log" >&2; echo "build_llamacpp: configure failed (log: $DIR/configure.log)" >&2; exit 1; }
if grep -qi "OpenMP not found" "$DIR/configure.log"; then
  echo "build_llamacpp: OpenMP not found by CMake (log: $DIR/configure.log)" >&2; exit 1
fi
echo "build_llamacpp: building ${TOOLS[*]} with -j$JOBS (several minutes on 2 cores, once)"
start=$(date +%s)
cmake --build "$BUILD" -j"$JOBS" --target "${TOOLS[@]}" >"$DIR/build.log" 2>&1 \
  || { grep -m5 -E "error|Error" "$DIR/build.log" >&2 || tail -n 20 "$DIR/build.log" >&2
       echo "build_llamacpp: build failed (log: $DIR/build.log)" >&2; exit 1; }
for t in "${TOOLS[@]}"; do [ -x "$BUILD/bin/$t" ] || { echo "build_llamacpp: $BUILD/bin/$t missing" >&2; exit 1; }; done
ldd "$BUILD/bin/llama-bench" | grep -q libgomp \
  || { echo "build_llamacpp: $BUILD/bin/llama-bench is not linked with OpenMP (libgomp)" >&2; exit 1; }
printf '%s\n' "${CMAKE_FLAGS[@]}" > "$BUILD/build-flags.txt"
echo "$want" > "$BUILD/.augur-ok"
ln -sfn "build-$VERSION/bin" "$DIR/bin"; ln -sfn "src-$VERSION" "$DIR/src"
echo "build_llamacpp: built in $(( $(date +%s) - start )) s -> $DIR/bin"
