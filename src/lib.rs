//! frr-composer: merge many FRRConfiguration objects into one FRR configuration per node.
#![forbid(unsafe_code)]

pub mod agent;
pub mod api;
pub mod cli;
pub mod core;
pub mod files;
pub mod frr;
pub mod input;
pub mod lab;
pub mod offline;
pub mod render;
pub mod settings;
pub mod signals;
pub mod watch;
pub mod webhook;
pub mod workdir;
