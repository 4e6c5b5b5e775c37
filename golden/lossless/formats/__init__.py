"""The representations (sparse formats) and transforms of the lossless framework, one
module each. Every module here that has an ``ALGORITHMS`` tuple is found by
:func:`cimcodec.golden.lossless.registry.discover` (see
:class:`cimcodec.golden.lossless.base.Representation` and ``Transform``)."""
