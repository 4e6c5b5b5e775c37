"""8x8 forward and inverse DCT of the baseline JPEG codec, bit exact with IJG libjpeg's
"islow" integer DCTs (``jfdctint.c`` / ``jidctint.c``, Loeffler-Ligtenberg-Moschytz).

Every function works on a batch of blocks at once (``int64`` numpy, no Python loop over
blocks). Blocks of coefficients are in *natural order*: ``F[..., 8*v + u]`` with ``v``
the vertical and ``u`` the horizontal frequency; blocks of samples are ``s[..., y, x]``.

Fixed point
-----------
``CONST_BITS = 13``, ``PASS1_BITS = 2``; a constant ``c`` is the integer
``FIX(c) = round(c * 2**13)`` (table :data:`FIX`), and::

    DESCALE(x, n) = (x + 2**(n-1)) >> n        (arithmetic shift: rounds half up)

One-dimensional inverse butterfly (``jidctint.c``), inputs ``i0..i7``::

    even:  z1 = (i2 + i6) * FIX_0_541196100
           t2 = z1 - i6 * FIX_1_847759065        t3 = z1 + i2 * FIX_0_765366865
           t0 = (i0 + i4) << 13                  t1 = (i0 - i4) << 13
           t10 = t0 + t3   t13 = t0 - t3   t11 = t1 + t2   t12 = t1 - t2
    odd:   a0, a1, a2, a3 = i7, i5, i3, i1
           z1 = a0 + a3   z2 = a1 + a2   z3 = a0 + a2   z4 = a1 + a3
           z5 = (z3 + z4) * FIX_1_175875602
           z1 *= -FIX_0_899976223   z2 *= -FIX_2_562915447
           z3 = z3 * -FIX_1_961570560 + z5   z4 = z4 * -FIX_0_390180644 + z5
           b0 = a0 * FIX_0_298631336 + z1 + z3   b1 = a1 * FIX_2_053119869 + z2 + z4
           b2 = a2 * FIX_3_072711026 + z2 + z3   b3 = a3 * FIX_1_501321110 + z1 + z4
    out:   o0 = t10 + b3   o7 = t10 - b3   o1 = t11 + b2   o6 = t11 - b2
           o2 = t12 + b1   o5 = t12 - b1   o3 = t13 + b0   o4 = t13 - b0

Inverse DCT (:func:`idct_islow`, = ``jpeg_idct_islow``)
-------------------------------------------------------
1. Dequantize: ``D[n] = F[n] * Q[n]`` (``F``: 16-bit ``JCOEF``, ``Q``: 0..32767, so
   ``|D| < 2**30``).
2. Pass 1, columns: for each ``u``, the butterfly over ``i_k = D[8*k + u]`` gives
   ``W[y, u] = int32(DESCALE(o_y, CONST_BITS - PASS1_BITS))``. ``int32`` is C's
   ``(int)`` cast to the ``int`` workspace: two's-complement wrap to 32 bits (it only
   matters for coefficient/quantizer products no encoder produces).
   libjpeg skips the butterfly when ``D[8*k + u] == 0`` for ``k = 1..7`` and writes
   ``W[y, u] = int32(D[u] << PASS1_BITS)``; this equals the full formula
   (``(D << 13 + 2**10) >> 11 == D << 2``), so it is not modelled separately.
3. Pass 2, rows: for each ``y``, the butterfly over ``i_k = W[y, k]`` (64-bit
   ``JLONG``, no overflow possible) gives ``v[y, x] = DESCALE(o_x, CONST_BITS +
   PASS1_BITS + 3)``. libjpeg's zero-row shortcut ``DESCALE(W[y, 0], PASS1_BITS + 3)``
   is again identical and not modelled.
4. Level shift and saturation: ``s = clip(v + 128, 0, 255)``.

   libjpeg's C code looks ``v & 1023`` up in its post-IDCT table
   (``jdmaster.c prepare_range_limit_table``), which saturates the same way for
   ``-512 <= v < 384`` and wraps modulo 1024 beyond (``v = 512`` gives 0), while
   libjpeg-turbo's SIMD IDCT, which Pillow runs, saturates. The model saturates, the
   cheaper and safer choice in hardware. Values beyond that window need quantizers far
   above 255 (16-bit tables) or corrupt data.

Forward DCT (:func:`fdct_islow`, = ``jpeg_fdct_islow`` of IJG 6b)
-----------------------------------------------------------------
Input ``x = s - 128``. One-dimensional butterfly over ``d0..d7``::

    p_k = d_k + d_{7-k},  m_k = d_k - d_{7-k}   (k = 0..3)
    even:  t10 = p0 + p3   t13 = p0 - p3   t11 = p1 + p2   t12 = p1 - p2
           E0 = t10 + t11   E4 = t10 - t11   z1 = (t12 + t13) * FIX_0_541196100
           E2 = z1 + t13 * FIX_0_765366865   E6 = z1 - t12 * FIX_1_847759065
    odd:   (m3, m2, m1, m0) play (tmp4, tmp5, tmp6, tmp7) of the C code:
           z1 = m3 + m0   z2 = m2 + m1   z3 = m3 + m1   z4 = m2 + m0
           z5 = (z3 + z4) * FIX_1_175875602
           z1 *= -FIX_0_899976223   z2 *= -FIX_2_562915447
           z3 = z3 * -FIX_1_961570560 + z5   z4 = z4 * -FIX_0_390180644 + z5
           E7 = m3 * FIX_0_298631336 + z1 + z3   E5 = m2 * FIX_2_053119869 + z2 + z4
           E3 = m1 * FIX_3_072711026 + z2 + z3   E1 = m0 * FIX_1_501321110 + z1 + z4

Pass 1 (rows): ``R[y, 0] = E0 << 2``, ``R[y, 4] = E4 << 2``, the other outputs
``DESCALE(E_k, 11)``. Pass 2 (columns): ``C[0, x] = DESCALE(E0, 2)``,
``C[4, x] = DESCALE(E4, 2)``, the others ``DESCALE(E_k, 15)``. The result is 8 times the
orthonormal DCT, and :func:`quantize` divides by ``8 * Q`` rounding half away from zero
(``jcdctmgr.c``): ``q = sign(C) * ((|C| + 4*Q) // (8*Q))``.
"""

from __future__ import annotations

import numpy as np

from cimcodec.golden.errors import CimcodecError

CONST_BITS = 13
PASS1_BITS = 2

#: Largest quantizer the golden model accepts (libjpeg's encoder limit, 15 bits).
MAX_QUANTIZER = 32767

#: The twelve LLM constants as integers, FIX(c) = round(c * 2**CONST_BITS).
FIX = {
    "0_298631336": 2446, "0_390180644": 3196, "0_541196100": 4433,
    "0_765366865": 6270, "0_899976223": 7373, "1_175875602": 9633,
    "1_501321110": 12299, "1_847759065": 15137, "1_961570560": 16069,
    "2_053119869": 16819, "2_562915447": 20995, "3_072711026": 25172,
}

_F = {name: np.int64(value) for name, value in FIX.items()}

def _descale(x: np.ndarray, n: int) -> np.ndarray:
    return (x + (1 << (n - 1))) >> n


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _idct_butterfly(i):
    """The LLM inverse butterfly of the module docstring; ``i`` is a list of 8 arrays,
    the result the 8 un-descaled outputs ``o0..o7``."""
    z1 = (i[2] + i[6]) * _F["0_541196100"]
    t2 = z1 - i[6] * _F["1_847759065"]
    t3 = z1 + i[2] * _F["0_765366865"]
    t0 = (i[0] + i[4]) << CONST_BITS
    t1 = (i[0] - i[4]) << CONST_BITS
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2

    a0, a1, a2, a3 = i[7], i[5], i[3], i[1]
    z1, z2, z3, z4 = a0 + a3, a1 + a2, a0 + a2, a1 + a3
    z5 = (z3 + z4) * _F["1_175875602"]
    z1 = z1 * -_F["0_899976223"]
    z2 = z2 * -_F["2_562915447"]
    z3 = z3 * -_F["1_961570560"] + z5
    z4 = z4 * -_F["0_390180644"] + z5
    b0 = a0 * _F["0_298631336"] + z1 + z3
    b1 = a1 * _F["2_053119869"] + z2 + z4
    b2 = a2 * _F["3_072711026"] + z2 + z3
    b3 = a3 * _F["1_501321110"] + z1 + z4
    return [t10 + b3, t11 + b2, t12 + b1, t13 + b0,
            t13 - b0, t12 - b1, t11 - b2, t10 - b3]


def _fdct_butterfly(d):
    """The LLM forward butterfly of the module docstring: ``(E0, E4)`` still to be
    shifted, and ``E1, E2, E3, E5, E6, E7`` still to be descaled by CONST_BITS."""
    p = [d[k] + d[7 - k] for k in range(4)]
    m = [d[k] - d[7 - k] for k in range(4)]
    t10, t13, t11, t12 = p[0] + p[3], p[0] - p[3], p[1] + p[2], p[1] - p[2]
    e = [None] * 8
    e[0], e[4] = t10 + t11, t10 - t11
    z1 = (t12 + t13) * _F["0_541196100"]
    e[2] = z1 + t13 * _F["0_765366865"]
    e[6] = z1 - t12 * _F["1_847759065"]

    z1, z2, z3, z4 = m[3] + m[0], m[2] + m[1], m[3] + m[1], m[2] + m[0]
    z5 = (z3 + z4) * _F["1_175875602"]
    z1 = z1 * -_F["0_899976223"]
    z2 = z2 * -_F["2_562915447"]
    z3 = z3 * -_F["1_961570560"] + z5
    z4 = z4 * -_F["0_390180644"] + z5
    e[7] = m[3] * _F["0_298631336"] + z1 + z3
    e[5] = m[2] * _F["2_053119869"] + z2 + z4
    e[3] = m[1] * _F["3_072711026"] + z2 + z3
    e[1] = m[0] * _F["1_501321110"] + z1 + z4
    return e


def _check_qtable(qtable) -> np.ndarray:
    q = np.asarray(qtable)
    if q.shape != (64,) or not np.issubdtype(q.dtype, np.integer):
        raise CimcodecError(
            f"A quantization table must be 64 integers in natural order, not {q.dtype} "
            f"of shape {q.shape}."
        )
    if q.min() < 0 or q.max() > MAX_QUANTIZER:
        raise CimcodecError(
            f"Quantization table entries must be between 0 and {MAX_QUANTIZER}, "
            f"not {int(q.min())}..{int(q.max())}."
        )
    return q.astype(np.int64)


def _check_coefficients(coefficients) -> np.ndarray:
    c = np.asarray(coefficients)
    if c.ndim < 1 or c.shape[-1] != 64 or not np.issubdtype(c.dtype, np.integer):
        raise CimcodecError(
            f"Coefficient blocks must be integers with 64 values on the last axis, not "
            f"{c.dtype} of shape {c.shape}."
        )
    if c.size and (c.min() < -32768 or c.max() > 32767):
        raise CimcodecError("DCT coefficients must fit in 16 bits (-32768..32767).")
    return c.astype(np.int64)


def dequantize(coefficients, qtable) -> np.ndarray:
    """``D[..., n] = F[..., n] * Q[n]`` as ``int64`` (both in natural order)."""
    return _check_coefficients(coefficients) * _check_qtable(qtable)


def range_limit(values) -> np.ndarray:
    """Level shift and saturation of IDCT outputs: ``clip(v + 128, 0, 255)`` as uint8."""
    return (np.clip(np.asarray(values, dtype=np.int64), -128, 127) + 128).astype(np.uint8)


def idct_islow(coefficients, qtable) -> np.ndarray:
    """Dequantize and inverse-transform blocks exactly like libjpeg's ``jpeg_idct_islow``.

    Parameters
    ----------
    coefficients : array of int, shape ``(..., 64)``
        Quantized coefficients ``F`` in natural order, each in -32768..32767.
    qtable : array of int, shape ``(64,)``
        Quantizers ``Q`` in natural order, each in 0..32767.

    Returns
    -------
    numpy.ndarray of uint8, shape ``(..., 8, 8)``
        Samples ``s[..., y, x]``, computed by steps 1-4 of the module docstring.

    Raises
    ------
    CimcodecError
        Wrong shapes or values out of range.
    """
    d = dequantize(coefficients, qtable)
    d = d.reshape(d.shape[:-1] + (8, 8))
    # Pass 1: 1-D IDCT down each column u (over the vertical frequencies v = axis -2).
    cols = _idct_butterfly([d[..., k, :] for k in range(8)])
    w = np.stack([_wrap32(_descale(o, CONST_BITS - PASS1_BITS)) for o in cols], axis=-2)
    # Pass 2: 1-D IDCT along each row y (over the horizontal frequencies = axis -1).
    rows = _idct_butterfly([w[..., k] for k in range(8)])
    v = np.stack([_descale(o, CONST_BITS + PASS1_BITS + 3) for o in rows], axis=-1)
    return range_limit(v)


def fdct_islow(samples) -> np.ndarray:
    """libjpeg's ``jpeg_fdct_islow`` of level-shifted samples, 8 times the DCT.

    Parameters
    ----------
    samples : array of uint8, shape ``(..., 8, 8)``
        Samples ``s[..., y, x]``; the transform uses ``s - 128``.

    Returns
    -------
    numpy.ndarray of int64, shape ``(..., 64)``
        Coefficients ``C`` in natural order (module docstring, "Forward DCT").
    """
    s = np.asarray(samples)
    if s.ndim < 2 or s.shape[-2:] != (8, 8) or s.dtype != np.uint8:
        raise CimcodecError(
            f"Sample blocks must be uint8 of shape (..., 8, 8), not {s.dtype} of shape "
            f"{s.shape}."
        )
    x = s.astype(np.int64) - 128
    # Pass 1: rows (along x = axis -1), results kept scaled up by 2**PASS1_BITS.
    e = _fdct_butterfly([x[..., k] for k in range(8)])
    r = [None] * 8
    r[0], r[4] = e[0] << PASS1_BITS, e[4] << PASS1_BITS
    for k in (1, 2, 3, 5, 6, 7):
        r[k] = _descale(e[k], CONST_BITS - PASS1_BITS)
    r = np.stack(r, axis=-1)
    # Pass 2: columns (along y = axis -2), removing PASS1_BITS but keeping the factor 8.
    e = _fdct_butterfly([r[..., k, :] for k in range(8)])
    c = [None] * 8
    c[0], c[4] = _descale(e[0], PASS1_BITS), _descale(e[4], PASS1_BITS)
    for k in (1, 2, 3, 5, 6, 7):
        c[k] = _descale(e[k], CONST_BITS + PASS1_BITS)
    c = np.stack(c, axis=-2)
    return c.reshape(c.shape[:-2] + (64,))


def quantize(dct, qtable) -> np.ndarray:
    """Quantize :func:`fdct_islow` output: ``sign(C) * ((|C| + 4*Q) // (8*Q))``.

    ``qtable`` (natural order) must be 1..32767 here: a zero quantizer cannot divide.
    """
    q = _check_qtable(qtable)
    if q.min() < 1:
        raise CimcodecError("Quantization table entries must be at least 1 for encoding.")
    c = np.asarray(dct, dtype=np.int64)
    divisor = q << 3
    return np.sign(c) * ((np.abs(c) + (divisor >> 1)) // divisor)


def forward(samples, qtable) -> np.ndarray:
    """Quantized coefficients of sample blocks: ``quantize(fdct_islow(samples), qtable)``."""
    return quantize(fdct_islow(samples), qtable)
