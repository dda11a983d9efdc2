import jax
import pytest

jax.config.update("jax_enable_x64", True)  # references and finite differences need f64
jax.config.update("jax_numpy_rank_promotion", "raise")  # no silent broadcasting


@pytest.fixture
def key():
    return jax.random.key(0)
