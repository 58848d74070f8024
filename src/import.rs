//! `checkin import`: patients and students from the programme spreadsheet.
