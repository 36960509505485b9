//! One module per pane; each draws itself into its rect from the app state.

pub mod chunks;
pub mod confirm;
pub mod connection;
pub mod files;
pub mod footer;
pub mod preview;
pub mod stats;
