"""Forward-mode (JVP) analysis of one-step maps: Lyapunov, sensitivity, linearisation.

Every tool takes a one-step map ``step(state, input) -> state`` (close over the
parameters, e.g. ``lambda s, u: bp.step(net, params, s, u, dt)``) whose state is any
pytree of float arrays, so plants, trained networks and closed loops plug in alike.
"""

from neuroctl.analysis.linearisation import Spectrum as Spectrum
from neuroctl.analysis.linearisation import impulse_responses as impulse_responses
from neuroctl.analysis.linearisation import jacobian as jacobian
from neuroctl.analysis.linearisation import jacobian_spectrum as jacobian_spectrum
from neuroctl.analysis.linearisation import tangent_rollout as tangent_rollout
from neuroctl.analysis.linearisation import tangent_step as tangent_step
from neuroctl.analysis.lyapunov import finite_time_exponents as finite_time_exponents
from neuroctl.analysis.lyapunov import lyapunov_spectrum as lyapunov_spectrum
from neuroctl.analysis.lyapunov import max_lyapunov_exponent as max_lyapunov_exponent
from neuroctl.analysis.masks import solver_state_mask as solver_state_mask
from neuroctl.analysis.sensitivity import JvpVjpCheck as JvpVjpCheck
from neuroctl.analysis.sensitivity import (
    directional_derivative as directional_derivative,
)
from neuroctl.analysis.sensitivity import jvp_vjp_check as jvp_vjp_check
from neuroctl.analysis.sensitivity import random_direction as random_direction
