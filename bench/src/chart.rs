//! The scaling chart: server time per call of TOUCH as sessions grow and of SURFACE as the
//! catalog grows, each beside its target, on logarithmic size axes.

use std::path::Path;

use plotters::prelude::*;

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> Result<(), String> {
    let bytes = FONT_PATHS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no DejaVuSans.ttf found (apt-get install fonts-dejavu-core)")?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| "bad font".to_string())
}

fn panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    points: &[(u64, f64)],
    target: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let x_min = points.iter().map(|p| p.0).min().unwrap_or(1).max(1) as f64 / 2.0;
    let x_max = points.iter().map(|p| p.0).max().unwrap_or(10) as f64 * 2.0;
    let y_max = points.iter().map(|p| p.1).fold(target, f64::max) * 1.3;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("server time per call (us)")
        .x_label_formatter(&|v| format!("{:.0}", v))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|&(x, y)| (x as f64, y)),
            BLUE.stroke_width(2),
        ))?
        .label("measured")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart.draw_series(
        points
            .iter()
            .map(|&(x, y)| Circle::new((x as f64, y), 4, BLUE.filled())),
    )?;
    chart
        .draw_series(LineSeries::new(
            vec![(x_min, target), (x_max, target)],
            RED.stroke_width(1),
        ))?
        .label("target")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    Ok(())
}

pub fn draw(
    path: &Path,
    touch: &[(u64, f64)],
    surface: &[(u64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    register_font()?;
    let root = BitMapBackend::new(path, (1100, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    panel(
        &left,
        "SESSION.TOUCH ... EVENT",
        "sessions in the database",
        touch,
        3.0,
    )?;
    panel(
        &right,
        "SESSION.SURFACE ... COUNT 10",
        "catalog items",
        surface,
        200.0,
    )?;
    root.present()?;
    Ok(())
}
