"""The one exception type the golden models, the hardware constructors and the CLI raise
for bad user input (parameters, files, shapes).

It derives from :class:`ValueError` so callers that already catch ``ValueError`` keep
working; the command line turns it into one sentence on standard error and exit code 2.
"""


class CimcodecError(ValueError):
    """Bad parameter, shape or file: the message is one sentence naming what was wrong."""
