"""Task-trained networks and cell models built from `neuroctl.biophysics`."""
