//! End-to-end tests live in `tests/`; see README.md for how to run them.
