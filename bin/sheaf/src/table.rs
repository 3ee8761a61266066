//! Aligned tables for the operator commands: each column as wide as its widest cell, so a long
//! prover name widens its column instead of pushing the others out of line.

use std::io::{self, Write};

/// How a column's cells sit in its width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// Writes `header` and `rows` to `out`, columns two spaces apart; the last column is not
/// padded, so no line ends in spaces.
pub fn write_table<const N: usize>(
    out: &mut impl Write,
    header: [&str; N],
    align: [Align; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = header.map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: [&str; N]| {
        let mut text = String::new();
        for (column, cell) in cells.iter().enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            let width = if column + 1 == N && align[column] == Align::Left {
                0
            } else {
                widths[column]
            };
            match align[column] {
                Align::Left => text.push_str(&format!("{cell:<width$}")),
                Align::Right => text.push_str(&format!("{cell:>width$}")),
            }
        }
        writeln!(out, "{text}")
    };
    line(header)?;
    for row in rows {
        line(row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_take_the_width_of_their_widest_cell() {
        let mut out = Vec::new();
        let rows = [
            ["a-long-name".to_owned(), "7".to_owned(), "x".to_owned()],
            ["b".to_owned(), "1234".to_owned(), "yz".to_owned()],
        ];
        write_table(
            &mut out,
            ["NAME", "N", "NOTE"],
            [Align::Left, Align::Right, Align::Left],
            &rows,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME            N  NOTE\na-long-name     7  x\nb            1234  yz\n"
        );
    }
}
