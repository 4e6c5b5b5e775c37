"""``cimcodec compress / decompress / inspect / sweep``: the weight codec's commands."""


def register(sub) -> None:
    """Add the codec's subcommands to the ``cimcodec`` parser."""
