//! SOPS decryption and encryption compatible with sops 3.11 (age and PGP keys).
