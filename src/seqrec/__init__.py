"""seqrec: sequential recommendation in PyTorch with evaluation you can trust."""

__version__ = "0.1.0"
