//! Flux notification events, alert matching, provider payloads and webhook receivers.
