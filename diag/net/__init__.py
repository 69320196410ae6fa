"""diag's private network layer: one implementation per network concept.

``target``: per-target time bound and safe error reason inside a multi-target check; ``digest``:
HTTP Digest auth that turns a malformed challenge into a clean per-target error.
"""
