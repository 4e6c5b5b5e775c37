"""The coders of the lossless framework, one module each. Every module here that has an
``ALGORITHMS`` tuple is found by :func:`cimcodec.golden.lossless.registry.discover`:
adding a coder means adding a module (see :class:`cimcodec.golden.lossless.base.Coder`)."""
