"""Differentiable, NEURON-equivalent simulation of multi-compartment neural networks."""

from neuroctl.biophysics.calcium import CalciumDynamics as CalciumDynamics
from neuroctl.biophysics.calcium import nernst as nernst
from neuroctl.biophysics.channels import HH as HH
from neuroctl.biophysics.channels import AbstractChannel as AbstractChannel
from neuroctl.biophysics.channels import Leak as Leak
from neuroctl.biophysics.extracellular import LFPElectrodes as LFPElectrodes
from neuroctl.biophysics.extracellular import PointElectrodes as PointElectrodes
from neuroctl.biophysics.extracellular import membrane_currents as membrane_currents
from neuroctl.biophysics.extracellular import (
    point_source_transfer as point_source_transfer,
)
from neuroctl.biophysics.extracellular import simulate_with_lfp as simulate_with_lfp
from neuroctl.biophysics.fused import simulate_fused as simulate_fused
from neuroctl.biophysics.hay import SKE2 as SKE2
from neuroctl.biophysics.hay import CaHVA as CaHVA
from neuroctl.biophysics.hay import CaLVA as CaLVA
from neuroctl.biophysics.hay import H as H
from neuroctl.biophysics.hay import M as M
from neuroctl.biophysics.hay import NaTs2T as NaTs2T
from neuroctl.biophysics.hay import SKv3_1 as SKv3_1
from neuroctl.biophysics.morphology import Branch as Branch
from neuroctl.biophysics.morphology import Morphology as Morphology
from neuroctl.biophysics.network import Cell as Cell
from neuroctl.biophysics.network import Connection as Connection
from neuroctl.biophysics.network import Network as Network
from neuroctl.biophysics.network import Params as Params
from neuroctl.biophysics.network import Site as Site
from neuroctl.biophysics.solver import State as State
from neuroctl.biophysics.solver import checkpoint_lengths_for as checkpoint_lengths_for
from neuroctl.biophysics.solver import gates_of as gates_of
from neuroctl.biophysics.solver import init_state as init_state
from neuroctl.biophysics.solver import simulate as simulate
from neuroctl.biophysics.solver import simulate_batch as simulate_batch
from neuroctl.biophysics.solver import step as step
from neuroctl.biophysics.synapses import AbstractSynapse as AbstractSynapse
from neuroctl.biophysics.synapses import GradedSynapse as GradedSynapse
