//! frr-composer: merge many FRRConfiguration objects into one FRR configuration per node.
#![forbid(unsafe_code)]

pub mod api;
pub mod core;
pub mod render;
pub mod input;
pub mod cli;
pub mod frr;
pub mod agent;
pub mod webhook;
pub mod shutdown;
