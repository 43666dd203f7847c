"""The local stack's stand-ins for what moto lacks, one concern per module.

`local/stack.py` wires them in; each module says what it stands in for and
has its self-test beside it (`test_<module>.py`)."""
