//! The one text table of the command line: a header row and rows, each column as wide as its widest cell, two
//! spaces apart, no trailing spaces.

/// `header` and `rows` as lines of aligned columns.
pub(crate) fn render<const COLUMNS: usize>(header: [&str; COLUMNS], rows: &[[String; COLUMNS]]) -> String {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = [["success-rate".to_owned(), "pass".to_owned(), String::new()]];
        assert_eq!(
            super::render(["CHECK", "VERDICT", "NOTE"], &rows),
            "CHECK         VERDICT  NOTE\nsuccess-rate  pass\n"
        );
    }
}
