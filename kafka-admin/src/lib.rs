//! Kafka cluster operations for recovery: consumer-group offsets (`drkit offsets`), topic state
//! (`drkit topics`) and partition reassignment (`drkit reassign`).
//!
//! Planning and offset arithmetic are pure functions over plain data, tested without a broker.
//! The network parts are thin: librdkafka (through `rdkafka`) for groups, offsets and metadata,
//! and a small kafka-protocol client for the admin requests librdkafka does not wrap. The
//! library never prints.

// Broker answers and plan files are foreign input: bad ones are errors, never a panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

// Reassignment plans: Kafka's plan JSON, validation, and the minimal-move planner (pure).
pub mod plan;
pub mod planner;

// Consumer-group offsets: target arithmetic (pure) and the librdkafka round trip.
pub mod group;
pub mod offsets;

// The kafka-protocol client and what is built on it.
pub mod client;
pub mod reassign;
pub mod topics;
