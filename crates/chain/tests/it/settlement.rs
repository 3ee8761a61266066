//! Settlement contract tests.
