import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import jax
import pytest
from hypothesis import settings

# Local runs explore fresh random examples (that is how the efun_pair cancellation was
# found); CI runs a fixed, derandomised set so a landing never hinges on the draw.
# Every failure found by exploration is pinned with @example in the test.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# tests mirror the packages (tests/biophysics, tests/envs, ...); shared helpers
# (helpers.py) sit here, importable from every folder
sys.path.insert(0, str(Path(__file__).parent))

jax.config.update("jax_enable_x64", True)  # references and finite differences need f64

# One persistent XLA compilation cache for the session, its pytest workers and the
# CLI subprocesses the tests start (they inherit the environment): a program that
# another test module or worker already compiled (the same env, trainer or solver
# at the same shapes) is loaded, not recompiled. `_release_compiled_code` below
# still drops the in-memory executables after every module. Results are the same
# executable either way; only compile time (most of the suite's time) is saved.
# The cache is capped at 512 MiB, least recently used programs evicted first; each
# code version adds ~70 MB. JAX's eviction needs `filelock` (a dev dependency;
# without it the cache is uncapped). The folder name marks the capped layout: JAX
# only evicts entries it wrote with an access-time file, which an uncapped cache
# lacks.
_XLA_CACHE = os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    str(Path(tempfile.gettempdir()) / f"neuroctl-test-xla-cache-lru-{os.getuid()}"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
if importlib.util.find_spec("filelock") is not None:  # else JAX cannot evict
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(512 * 2**20))  # [B]
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
)
if "JAX_COMPILATION_CACHE_MAX_SIZE" in os.environ:
    jax.config.update(
        "jax_compilation_cache_max_size",
        int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]),
    )
jax.config.update("jax_numpy_rank_promotion", "raise")  # no silent broadcasting


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module.

    Envs and networks hash by identity, so a session otherwise keeps every module's
    executables alive. A full-suite run (with training jobs beside it) once
    segfaulted inside XLA's compiler near its end; this bounds what one process
    holds.
    """
    yield
    jax.clear_caches()
    import gc

    gc.collect()
