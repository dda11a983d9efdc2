"""Task-trained networks and cell models built from `neuroctl.biophysics`."""

from neuroctl.plants.evidence import EvidencePlant as EvidencePlant
from neuroctl.plants.evidence import load as load
