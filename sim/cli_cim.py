"""``cimcodec mac / rtl-mac``: the CIM MAC array's commands."""


def register(sub) -> None:
    """Add the CIM array's subcommands to the ``cimcodec`` parser."""
