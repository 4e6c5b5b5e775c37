"""The JPEG codec: the pure-Python baseline reference (``reference``), its vectorized twin
(``fast``), the islow DCT, Huffman tables and the zigzag order."""
