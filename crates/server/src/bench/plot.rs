//! What every benchmark plot shares: an SVG document drawn with plotters into a string, and
//! the colour each system keeps from one plot to the next (brisk blue, the system it is
//! compared with red).

use std::ops::Range;

use anyhow::Result;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

pub const BRISK: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub const BASELINE: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// Further series (more than two modes), after [`BRISK`] and [`BASELINE`].
pub const MORE: [RGBColor; 2] = [RGBColor(0x2c, 0xa0, 0x2c), RGBColor(0x94, 0x67, 0xbd)];

pub const FONT: &str = "sans-serif";

/// The area `draw` paints on: the whole document below its title.
pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// An SVG document of `size` pixels with `title` across the top, the rest drawn by `draw`.
pub fn svg(
    size: (u32, u32),
    title: &str,
    draw: impl FnOnce(&Area<'_>) -> Result<()>,
) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)?;
        let body = root.titled(title, (FONT, 18))?;
        draw(&body)?;
        root.present()?;
    }
    Ok(out)
}

/// The legend of every series given a label, in `corner`.
pub fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    corner: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

/// The colour of the `i`th series when a plot has any number of them.
pub fn series_color(i: usize) -> RGBColor {
    match i {
        0 => BRISK,
        1 => BASELINE,
        _ => MORE[(i - 2) % MORE.len()],
    }
}

/// A legend entry's sample: a short stroke of the series' colour.
pub fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
}

/// A legend entry's sample: a filled square of the series' colour (bars, shaded spans).
pub fn legend_box(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
}

/// An x axis of named categories for grouped bars: category `i` spans `i..i + 1` and its name
/// stands under its middle. (plotters' own category axes put a lone category at the wrong
/// place and leave an empty slot after the last.)
pub struct Categories(pub Vec<String>);

impl Ranged for Categories {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (from, to): (i32, i32)) -> i32 {
        let width = self.0.len().max(1) as f64;
        from + ((to - from) as f64 * value / width).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.0.len()).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> Range<f64> {
        0.0..self.0.len().max(1) as f64
    }
}

impl ValueFormatter<f64> for Categories {
    fn format_ext(&self, value: &f64) -> String {
        let i = value.floor().max(0.0) as usize;
        self.0.get(i).cloned().unwrap_or_default()
    }
}

/// The texts of a plot's `<text>` elements (titles, axis descriptions, tick labels, legend),
/// for tests to find what a reader would read.
#[cfg(test)]
pub fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let (_, rest) = t.split_once('>')?;
            let (text, _) = rest.split_once("</text>")?;
            Some(text.trim().to_string())
        })
        .collect()
}

/// Checks that `svg` is a plot in which a reader finds each of `expected` in some text.
#[cfg(test)]
pub fn assert_shows(svg: &str, expected: &[&str]) {
    assert!(svg.starts_with("<svg"), "{svg}");
    let texts = texts(svg);
    for text in expected {
        assert!(
            texts.iter().any(|t| t.contains(text)),
            "{text} missing from {texts:?}"
        );
    }
}
