import os

import jax
import pytest
from hypothesis import settings

# Local runs explore fresh random examples (that is how the efun_pair cancellation was
# found); CI runs a fixed, derandomised set so a landing never hinges on the draw.
# Every failure found by exploration is pinned with @example in the test.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

jax.config.update("jax_enable_x64", True)  # references and finite differences need f64
jax.config.update("jax_numpy_rank_promotion", "raise")  # no silent broadcasting


@pytest.fixture
def key():
    return jax.random.key(0)
