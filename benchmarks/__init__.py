"""Benchmarks comparing neuroctl's solver with peer simulators (Jaxley, NEURON)."""
