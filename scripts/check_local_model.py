"""Does the embedded model run here? Loads SmolLM2, reads a prompt of ~80 tokens (a
batch: the matrix products a single token does not reach) and decodes two (~1 s).

    .venv/bin/python scripts/check_local_model.py

`make install` runs it after installing. A llama.cpp built for the CPU it was built on
(`-march=native`) can crash on a CPU, or under a kernel, that will not run all of it: a
machine that reports AMX but does not grant it dies with SIGSEGV at the first matrix product.
`make install` builds llama-cpp-python with `GGML_NATIVE=OFF` (AVX2, FMA, F16C: any x86-64
server of the last decade) and, when this check fails (a wheel built natively before, from
pip's cache), builds it again without the cache.
"""

from __future__ import annotations

import sys

from branchwork.providers.local import find_gguf


def main() -> int:
    path = find_gguf()
    if path is None:
        print("check: the SmolLM2 model file is not installed", file=sys.stderr)
        return 1
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, verbose=False)
    out = llm.create_completion("Hello world. " * 20, max_tokens=2, temperature=0.0)
    llm.close()
    print(f"the embedded model runs: {out['choices'][0]['text']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
