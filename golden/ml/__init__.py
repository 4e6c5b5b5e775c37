"""The ML side: digits networks and data sets, the CIM analog model and its quantization-
aware training, and rate-accuracy sweeps."""
