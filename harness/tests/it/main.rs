//! The harness's own tests: its parts against the real server, in this process.

mod cuts;
