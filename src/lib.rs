//! udpix: stream images between machines over UDP with a loss-tolerant transport of its own.
//!
//! - [`addr`]: addresses as people type them (`HOST[:PORT]`, port 7878 by default).
//! - [`proto`]: the sans-IO protocol core (wire format, sender, receiver, recovery, pacing).
//! - [`engine`]: the tokio driver that owns sockets and timers and publishes events.
//! - [`store`]: where received images go (temp file, hash check, safe names, no overwrite).
//! - [`config`]: the settings every front end shares, layered (CLI > env > file > default).
//! - [`display`]: peer-chosen text made safe to print on a terminal.
//! - [`figures`]: every figure shown about a transfer, computed once (`docs/FIGURES.md`).
//! - [`formats`]: the image formats udpix decodes, told by content.
//! - [`logging`]: diagnostics through `tracing` (`-v`, `-q`, `RUST_LOG`).
//! - [`bench`]: `udpix bench`, transfer times against the link's limit.
//! - [`netsim`]: a UDP impairment proxy for assessing the protocol on bad links.
#![warn(missing_docs)]

pub mod addr;
pub mod bench;
pub mod config;
pub mod display;
pub mod engine;
pub mod figures;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub mod keep;
pub mod logging;
pub mod netsim;
pub mod passphrase;
pub mod proto;
pub mod reencode;
pub mod report;
pub mod sim;
pub mod store;
pub mod tui;
pub mod units;
pub mod watch;
