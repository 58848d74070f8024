//! Reading a spreadsheet saved as CSV: the header against a layout, each
//! row with the line number the spreadsheet shows.

use super::*;

/// One data row: its spreadsheet line and its cells by column name.
pub(super) struct Row {
    pub(super) line: u64,
    pub(super) cells: Vec<(String, String)>,
}

impl Row {
    pub(super) fn get(&self, column: &str) -> &str {
        self.cells
            .iter()
            .find(|(name, _)| name == column)
            .map_or("", |(_, value)| value.as_str())
    }
}

pub(super) struct Sheet {
    pub(super) columns: Vec<String>,
    pub(super) rows: Vec<Row>,
    /// Rows that could not be split into cells.
    pub(super) problems: Vec<RowError>,
}

impl Sheet {
    /// A row's field problems as `RowError`s, in the file's column order.
    pub(super) fn note(&self, problems: &mut Vec<RowError>, line: u64, fields: &Fields) {
        let mut found: Vec<(usize, RowError)> = fields
            .errors()
            .iter()
            .flat_map(|(field, messages)| {
                let at = self.columns.iter().position(|c| c == field);
                messages
                    .iter()
                    .map(move |m| (at.unwrap_or(usize::MAX), RowError::new(line, field, m)))
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        problems.extend(found.into_iter().map(|(_, e)| e));
    }
}

/// "Given Name " and "given-name" both name `given_name`.
pub(super) fn column_name(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .trim()
        .to_lowercase()
        .replace([' ', '-'], "_")
}

pub(super) fn read_sheet(path: &Path, layout: &[Column], what: &str) -> Result<Sheet, ImportError> {
    let file_problem = |problem: String| ImportError::File {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| file_problem(format!("cannot be read: {e}")))?;
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if let Err(e) = std::str::from_utf8(text) {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        return Err(file_problem(format!(
            "line {line} is not UTF-8 text; save the file from the spreadsheet as \"CSV UTF-8\""
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut records = reader.records();
    let header = match records.next() {
        Some(header) => header.map_err(|e| file_problem(e.to_string()))?,
        None => {
            return Err(file_problem(
                "is empty: the first line must name the columns".into(),
            ))
        }
    };
    let columns: Vec<String> = header.iter().map(column_name).collect();
    check_header(&columns, layout, what)?;
    let (mut rows, mut problems) = (Vec::new(), Vec::new());
    let mut lines = LineCounter::new(text);
    // A cell with line breaks spans several lines of the file but is one
    // spreadsheet row, and the spreadsheet's row number is what people see.
    let breaks_in = |record: &csv::StringRecord| -> u64 {
        record.iter().map(|c| c.matches('\n').count() as u64).sum()
    };
    let mut extra_lines = breaks_in(&header);
    for record in records {
        let record = record.map_err(|e| file_problem(e.to_string()))?;
        let line = lines.line_at(record.position().map_or(0, |p| p.byte() as usize)) - extra_lines;
        extra_lines += breaks_in(&record);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut stray = record.iter().enumerate().filter(|(i, cell)| {
            !cell.trim().is_empty() && columns.get(*i).is_none_or(String::is_empty)
        });
        if let Some((i, _)) = stray.next() {
            let message = "has a value, but the header gives this column no name";
            problems.push(RowError::new(line, &format!("column {}", i + 1), message));
            continue;
        }
        let cells = columns
            .iter()
            .zip(record.iter().chain(std::iter::repeat("")))
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, value)| (name.clone(), value.to_string()))
            .collect();
        rows.push(Row { line, cells });
    }
    if rows.is_empty() && problems.is_empty() {
        return Err(file_problem("has a header but no rows".into()));
    }
    Ok(Sheet {
        columns,
        rows,
        problems,
    })
}

/// The line of the file on which a record starts. The csv reader's own line
/// count lags after CRLF line ends, and its byte offset can point at the end
/// of the previous line, so the count is made here.
pub(super) struct LineCounter<'a> {
    pub(super) text: &'a [u8],
    pub(super) counted_to: usize,
    pub(super) line: u64,
}

impl<'a> LineCounter<'a> {
    pub(super) fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            counted_to: 0,
            line: 1,
        }
    }

    /// `from` is the reader's offset for a record; records come in order.
    pub(super) fn line_at(&mut self, from: usize) -> u64 {
        let from = from.clamp(self.counted_to, self.text.len());
        let skipped = self.text[from..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let start = from + skipped;
        let breaks = self.text[self.counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += breaks as u64;
        self.counted_to = start;
        self.line
    }
}

/// Unknown, repeated and missing columns, all reported before any row is read.
pub(super) fn check_header(
    columns: &[String],
    layout: &[Column],
    what: &str,
) -> Result<(), ImportError> {
    let known: Vec<&str> = layout.iter().map(|c| c.name).collect();
    let mut problems = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if !known.contains(&name.as_str()) {
            let message = format!(
                "is not a column of a {what} file; the columns are {}",
                known.join(", ")
            );
            problems.push(RowError::new(1, name, message));
        } else if columns[..i].contains(name) {
            problems.push(RowError::new(1, name, "appears twice in the header"));
        }
    }
    for required in layout.iter().filter(|c| c.required) {
        if !columns.iter().any(|c| c == required.name) {
            problems.push(RowError::new(
                1,
                required.name,
                "this column is required and missing",
            ));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(ImportError::Rows(problems)),
    }
}
