//! The programme's rules with no I/O: its vocabularies ([`enums`]), its
//! calendar ([`schedule`]) and validated values ([`language`], [`people`]).
//! Handlers, jobs and the database layer call these; nothing here reads a
//! clock, a database or the environment.

pub mod enums;
pub mod language;
pub mod people;
pub mod phone;
pub mod schedule;

pub use enums::*;
