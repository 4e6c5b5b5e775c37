"""Bit-exact reference models of the hardware blocks, one module per ``hw/<block>.py``,
each with the parameter object (``*Shape`` / ``*Params``) that sizes both."""
