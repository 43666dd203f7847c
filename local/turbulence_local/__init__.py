"""Stand-ins of the local stack, one concern per module; `local/stack.py`
wires them into moto."""
