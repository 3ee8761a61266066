//! Membership registry tests.
