"""Errors the library's steps share.

`NotEnoughData`: the data a model needs is not there (a feed is absent, the history is too
short, every customer had the same outcome). It is a finding about the data, not a fault of
ours: the workflow skips that model, says why, and writes its columns empty, so a shop that
sends only CRM records, or only a few weeks of orders, still gets every other output.
"""


class NotEnoughData(ValueError):
    """A model cannot be fitted or evaluated on this data; the message says what is missing."""
