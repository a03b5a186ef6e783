//! A plain text table with aligned columns, for human output.

/// Renders `rows` under `header`, columns separated by two spaces, trailing blanks trimmed.
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            let pad = width - cell.chars().count() + 2;
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_to_the_widest_cell() {
        let rows = vec![
            vec!["T1".to_owned(), "yes".to_owned()],
            vec!["T1234567".to_owned(), "no".to_owned()],
        ];
        let text = render(&["TEAM", "BOT"], &rows);
        assert_eq!(text, "TEAM      BOT\nT1        yes\nT1234567  no\n");
    }
}
