//! Flux notification events, alert matching, provider payloads and webhook receivers.
//!
//! The core is pure: [`event`] (the event JSON and its metadata rules), [`alert`] (which Alerts
//! an event reaches and the metadata each provider sees), [`dedup`] (duplicate-event rate
//! limiting), [`provider`] (event → HTTP request description, never sent) and [`receiver`]
//! (webhook digest and signature checks). Network I/O sits in [`sender`] (reqwest, NATS) and
//! [`server`] (the event endpoint and the `/hook/<digest>` receiver endpoint, axum).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod alert;
pub mod dedup;
pub mod error;
pub mod event;
pub mod gojson;
pub mod provider;
pub mod receiver;
pub mod sender;
pub mod server;
pub mod time;

pub use alert::{Alert, AlertSpec, EventSource};
pub use dedup::Deduper;
pub use error::{Error, Result};
pub use event::{Event, ObjectReference, Severity};
pub use provider::{HttpRequest, Outbound, Provider, ProviderConfig, ProviderSpec, ProviderType};
pub use receiver::{Receiver, ReceiverSpec, ReceiverType};
