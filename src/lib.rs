//! checkin: a student-to-patient check-in call programme for a primary-care
//! practice. The crate's modules, so the binary and the tests drive the same
//! app. Read SPEC.md for the words used here.

pub mod access;
pub mod audit;
pub mod auth;
pub mod calls;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod discharge;
pub mod domain;
pub mod enrolment;
pub mod error;
pub mod import;
pub mod jobs;
pub mod mail;
pub mod pairing;
pub mod protocol;
pub mod simulate;
pub mod startup;
pub mod telemetry;
pub mod web;
pub mod workload;
