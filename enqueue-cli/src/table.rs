//! Plain text tables for people (scripts read `--json`): no borders, no
//! colour, columns two spaces apart and as wide as their widest cell (by
//! display width, so CJK titles line up), one line per row.

use comfy_table::{presets::NOTHING, CellAlignment, Table};

/// An empty table with these column titles.
pub fn with_header(titles: &[&str]) -> Table {
    let mut table = Table::new();
    table.set_header(titles);
    table
}

/// The table as text, without trailing spaces or a final newline. Columns
/// whose index is in `right` (numbers) are right-aligned, header included.
pub fn render(mut table: Table, right: &[usize]) -> String {
    table.load_style(NOTHING);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
        if right.contains(&column.index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.trim_fmt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_columns_two_spaces_apart() {
        let mut table = with_header(&["ID", "NAME", "NOTE"]);
        table.add_row(vec!["7", "short", ""]);
        table.add_row(vec!["1234", "a longer name", "last column"]);
        assert_eq!(
            render(table, &[0]),
            "  ID  NAME           NOTE\n   7  short\n1234  a longer name  last column"
        );
    }

    #[test]
    fn headless_tables_keep_leading_spaces_and_wide_characters_line_up() {
        let mut table = Table::new();
        table.add_row(vec!["workers alive", "2"]);
        table.add_row(vec!["  w1", "1 running"]);
        table.add_row(vec!["秒拍", "x"]);
        assert_eq!(
            render(table, &[]),
            "workers alive  2\n  w1           1 running\n秒拍           x"
        );
    }
}
