"""Lossless back ends for pruned, quantized weights (seed 002): coders x sparse formats,
every combination enumerated and measured by one framework.

* :mod:`.base`: the value domain, the :class:`~.base.Cost` note (decoder-cost class,
  symbols per clock, table or state size) and the three kinds of algorithm.
* :mod:`.coders`: one module per coder of a stream of integers (``fixed`` bit packing,
  canonical ``huffman``, ``ans``, ``rle`` of zeros, ``expgolomb``, and the LZ family
  ``zlib``, ``lzma``, ``zstd``).
* :mod:`.formats`: one module per representation of a matrix as named streams
  (``dense``, ``bitmap``, ``csr``, ``csc``, ``coo``, Deep Compression's relative form
  ``rel``) and the ``delta`` transform.
* :mod:`.registry`: discovery, the enumeration of combinations, and the frame of one
  tensor (:meth:`~.registry.Combination.encode` / ``decode``).
* :mod:`.measure`: prune, quantize and measure tensors under many combinations (the
  ``lossless-bench`` command and ``bench/lossless.py``).
* :mod:`.codec`: the combinations as model-container codecs ``lossless:<combination>``.

Adding an algorithm means adding one module to ``coders/`` or ``formats/`` with an
``ALGORITHMS`` tuple; the registry finds it.
"""

from cimcodec.golden.lossless.registry import (
    Combination,
    combination,
    combinations,
    discover,
    register,
)

# (The registry's coders() / representations() / transforms() are not re-exported: the
# subpackages coders and formats take those attribute names.)
__all__ = ["Combination", "combination", "combinations", "discover", "register"]
