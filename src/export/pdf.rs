//! The PDF report an auditor can hand on: cover letter, summary, a section per requirement,
//! signatures. Built-in PDF fonts, so the text is real text (pdftotext recovers it).

use printpdf::{
    BuiltinFont, Color, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};

use super::PostureExport;
use crate::crd::State;

/// Paper the report is laid out on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Paper {
    #[default]
    A4,
    Letter,
}

impl Paper {
    /// Width and height in points.
    fn size(self) -> (f32, f32) {
        match self {
            Paper::A4 => (595.28, 841.89),
            Paper::Letter => (612.0, 792.0),
        }
    }
}

const MARGIN: f32 = 56.0;
const INK: (f32, f32, f32) = (0.12, 0.14, 0.18);
const MUTED: (f32, f32, f32) = (0.38, 0.40, 0.45);
const RULE: (f32, f32, f32) = (0.80, 0.82, 0.86);

fn state_colour(state: State) -> (f32, f32, f32) {
    match state {
        State::Green => (0.13, 0.55, 0.27),
        State::Amber => (0.85, 0.55, 0.05),
        State::Red => (0.78, 0.16, 0.16),
        State::Unknown => (0.45, 0.47, 0.52),
    }
}

#[derive(Clone, Copy)]
enum Face {
    Regular,
    Bold,
    Mono,
}

impl Face {
    fn font(self) -> BuiltinFont {
        match self {
            Face::Regular => BuiltinFont::Helvetica,
            Face::Bold => BuiltinFont::HelveticaBold,
            Face::Mono => BuiltinFont::Courier,
        }
    }

    /// Average advance of a character in ems, for wrapping (Courier's is exact).
    fn em(self) -> f32 {
        match self {
            Face::Regular => 0.50,
            Face::Bold => 0.55,
            Face::Mono => 0.60,
        }
    }
}

/// Lays text out top-down, starting new pages as needed.
struct Layout {
    width: f32,
    height: f32,
    y: f32,
    ops: Vec<Op>,
    pages: Vec<PdfPage>,
    footer: String,
}

impl Layout {
    fn new(paper: Paper, footer: String) -> Self {
        let (width, height) = paper.size();
        Layout {
            width,
            height,
            y: height - MARGIN,
            ops: Vec::new(),
            pages: Vec::new(),
            footer,
        }
    }

    fn content_width(&self) -> f32 {
        self.width - 2.0 * MARGIN
    }

    fn page_break(&mut self) {
        let number = self.pages.len() + 1;
        let footer = format!("{} · page {number}", self.footer);
        self.text_at(MARGIN, MARGIN / 2.0, &footer, Face::Regular, 7.5, MUTED);
        let ops = std::mem::take(&mut self.ops);
        let to_mm = |pt: f32| Mm(pt * 25.4 / 72.0);
        self.pages
            .push(PdfPage::new(to_mm(self.width), to_mm(self.height), ops));
        self.y = self.height - MARGIN;
    }

    /// Ensures `needed` points remain above the bottom margin.
    fn room(&mut self, needed: f32) {
        if self.y - needed < MARGIN {
            self.page_break();
        }
    }

    fn text_at(
        &mut self,
        x: f32,
        y: f32,
        text: &str,
        face: Face,
        size: f32,
        colour: (f32, f32, f32),
    ) {
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFillColor { col: rgb(colour) },
            Op::SetFont {
                font: PdfFontHandle::Builtin(face.font()),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point { x: Pt(x), y: Pt(y) },
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_string())],
            },
            Op::EndTextSection,
        ]);
    }

    /// A wrapped paragraph at `indent` from the left margin.
    fn paragraph(
        &mut self,
        text: &str,
        face: Face,
        size: f32,
        colour: (f32, f32, f32),
        indent: f32,
    ) {
        let max_chars = ((self.content_width() - indent) / (size * face.em())) as usize;
        for line in wrap(text, max_chars.max(10)) {
            self.room(size * 1.4);
            self.y -= size * 1.4;
            self.text_at(MARGIN + indent, self.y, &line, face, size, colour);
        }
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    fn rule(&mut self) {
        self.room(8.0);
        self.y -= 6.0;
        self.ops.extend([
            Op::SetOutlineColor { col: rgb(RULE) },
            Op::SetOutlineThickness { pt: Pt(0.7) },
            Op::DrawLine {
                line: Line {
                    points: vec![
                        LinePoint {
                            p: Point {
                                x: Pt(MARGIN),
                                y: Pt(self.y),
                            },
                            bezier: false,
                        },
                        LinePoint {
                            p: Point {
                                x: Pt(self.width - MARGIN),
                                y: Pt(self.y),
                            },
                            bezier: false,
                        },
                    ],
                    is_closed: false,
                },
            },
        ]);
        self.y -= 4.0;
    }

    /// A coloured badge with the state in words beside it (colour is never the only signal).
    fn badge(&mut self, x: f32, baseline: f32, state: State) {
        self.ops.extend([
            Op::SetFillColor {
                col: rgb(state_colour(state)),
            },
            Op::DrawRectangle {
                rectangle: Rect {
                    x: Pt(x),
                    y: Pt(baseline - 2.0),
                    width: Pt(9.0),
                    height: Pt(9.0),
                    mode: Some(PaintMode::Fill),
                    winding_order: None,
                },
            },
        ]);
        self.text_at(
            x + 13.0,
            baseline,
            state.as_str(),
            Face::Bold,
            9.0,
            state_colour(state),
        );
    }

    /// A table row: cells at fixed x offsets; a cell of `None` text draws the state badge.
    fn row(&mut self, cells: &[(f32, String, Face)], state_at: Option<(f32, State)>, size: f32) {
        self.room(size * 1.6);
        self.y -= size * 1.6;
        for (x, text, face) in cells {
            self.text_at(MARGIN + x, self.y, text, *face, size, INK);
        }
        if let Some((x, state)) = state_at {
            self.badge(MARGIN + x, self.y, state);
        }
    }

    /// A trend row: the label, a filled cell per known day (an outline for a day without one),
    /// and the state in words after the cells.
    fn trend_row(
        &mut self,
        label: &str,
        cells: &[Option<State>],
        label_w: f32,
        cell: f32,
        words: &str,
    ) {
        self.room(16.0);
        self.y -= 16.0;
        self.text_at(MARGIN, self.y, label, Face::Bold, 9.0, INK);
        for (i, state) in cells.iter().enumerate() {
            let rectangle = Rect {
                x: Pt(MARGIN + label_w + cell * i as f32),
                y: Pt(self.y - 2.0),
                width: Pt((cell - 0.8).max(0.5)),
                height: Pt(10.0),
                mode: Some(if state.is_some() {
                    PaintMode::Fill
                } else {
                    PaintMode::Stroke
                }),
                winding_order: None,
            };
            match state {
                Some(state) => self.ops.push(Op::SetFillColor {
                    col: rgb(state_colour(*state)),
                }),
                None => self.ops.extend([
                    Op::SetOutlineColor { col: rgb(RULE) },
                    Op::SetOutlineThickness { pt: Pt(0.4) },
                ]),
            }
            self.ops.push(Op::DrawRectangle { rectangle });
        }
        let x = MARGIN + label_w + cell * cells.len() as f32 + 6.0;
        self.text_at(x, self.y, words, Face::Regular, 9.0, INK);
    }

    fn finish(mut self) -> Vec<PdfPage> {
        self.page_break();
        self.pages
    }
}

fn rgb((r, g, b): (f32, f32, f32)) -> Color {
    Color::Rgb(Rgb {
        r,
        g,
        b,
        icc_profile: None,
    })
}

/// Greedy word wrap; a word longer than a line is cut.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word.to_string();
            while word.chars().count() > max {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(max).collect();
                word = word.chars().skip(max).collect();
                lines.push(head);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.into()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

fn day(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

fn minute(t: Option<jiff::Timestamp>) -> String {
    t.map_or_else(
        || "—".into(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Renders the report. The document's creation date is the export's instant.
pub fn render(export: &PostureExport, paper: Paper) -> Vec<u8> {
    let org = &export.organization;
    let system = org
        .system
        .clone()
        .unwrap_or_else(|| "AI agent platform".into());
    let period = format!("{} to {}", day(export.period.start), day(export.period.end));
    let mut l = Layout::new(
        paper,
        format!("{} · SOC 2 evidence report · {period}", org.name),
    );

    // Cover letter.
    l.gap(40.0);
    l.paragraph(
        "SOC 2 Type II — AI Agent Controls",
        Face::Bold,
        22.0,
        INK,
        0.0,
    );
    l.paragraph(
        "Evidence report and cover letter",
        Face::Regular,
        14.0,
        MUTED,
        0.0,
    );
    l.gap(24.0);
    for (label, value) in [
        ("Organization", org.name.clone()),
        ("System", system.clone()),
        ("Audit period", period.clone()),
        (
            "Prepared for",
            org.auditor
                .clone()
                .unwrap_or_else(|| "The service auditor".into()),
        ),
        ("Generated", minute(Some(export.generated_at))),
        (
            "Evidence chain head",
            format!("event #{}, SHA-256:", export.chain_head.seq),
        ),
    ] {
        l.row(
            &[
                (0.0, label.into(), Face::Bold),
                (120.0, clip(&value, 80), Face::Regular),
            ],
            None,
            10.0,
        );
    }
    l.paragraph(&export.chain_head.hash, Face::Mono, 8.0, INK, 120.0);
    l.gap(24.0);
    let addressee = org
        .auditor
        .clone()
        .unwrap_or_else(|| "the service auditor".into());
    let letter = [
        format!("To {addressee},"),
        format!(
            "This report sets out the evidence {} holds for the SOC 2 Common Criteria that its AI agents touch, \
             for the system \"{system}\" over the period {period}. For each criterion it states whether the \
             evidence is current (Green), sparse or intermittent (Amber) or absent (Red), how that was computed \
             (the exact query over the audit log), and the most recent supporting events.",
            org.name
        ),
        "The evidence comes from an append-only audit log in which every event is chained to the one before \
         it by a SHA-256 hash; the chain head above identifies the exact log state this report was computed \
         from, and each listed event carries its chain hash so that it can be traced and verified."
            .into(),
        "This report covers the AI-agent-specific criteria only. It is additive to, and does not replace, \
         the organisation's own SOC 2 program and its evidence."
            .into(),
        format!(
            "Of {} requirements, {} are Green, {} Amber, {} Red and {} Unknown.",
            export.summary.total, export.summary.green, export.summary.amber, export.summary.red, export.summary.unknown
        ),
        "Yours faithfully, the signatories below.".into(),
    ];
    for paragraph in letter {
        l.paragraph(&paragraph, Face::Regular, 10.5, INK, 0.0);
        l.gap(6.0);
    }
    l.page_break();

    // Summary table.
    l.paragraph("Summary", Face::Bold, 16.0, INK, 0.0);
    l.gap(6.0);
    let columns = |id: &str, title: &str, coverage: &str, events: &str, last: &str| {
        vec![
            (0.0, id.to_string(), Face::Bold),
            (48.0, clip(title, 38), Face::Regular),
            (300.0, coverage.to_string(), Face::Regular),
            (352.0, events.to_string(), Face::Regular),
            (400.0, last.to_string(), Face::Regular),
        ]
    };
    l.row(
        &[
            columns("ID", "Requirement", "Coverage", "Events", "Last evidence"),
            vec![(230.0, "State".into(), Face::Bold)],
        ]
        .concat(),
        None,
        9.0,
    );
    l.rule();
    for r in &export.requirements {
        let cells = columns(
            &r.id,
            &r.title,
            &r.coverage,
            &r.events_in_window.to_string(),
            &minute(r.last_evidence_at),
        );
        l.row(&cells, Some((230.0, r.state)), 9.0);
    }
    l.rule();
    l.paragraph(
        "Green: evidence at the expected cadence throughout the window. Amber: evidence exists but misses \
         expected intervals. Red: no evidence in the window. Unknown: the evidence store could not be read.",
        Face::Regular,
        8.5,
        MUTED,
        0.0,
    );

    // The trend: a row per requirement, a cell per day.
    if !export.trend.rows.is_empty() {
        l.page_break();
        l.paragraph(
            &format!(
                "Posture trend, {} to {}",
                export.trend.from, export.trend.to
            ),
            Face::Bold,
            15.0,
            INK,
            0.0,
        );
        l.paragraph(
            "One cell per day, coloured by the day's state; a blank day had no evaluation. The \
             current state and green streak are in words at the right.",
            Face::Regular,
            9.0,
            MUTED,
            0.0,
        );
        l.gap(6.0);
        let days = super::trend::dates(&export.trend);
        let label = 60.0;
        let streak = 130.0;
        let cell = ((l.content_width() - label - streak) / days.len().max(1) as f32).min(12.0);
        for row in &export.trend.rows {
            let states: std::collections::BTreeMap<&str, State> = row
                .days
                .iter()
                .map(|d| (d.date.as_str(), d.state))
                .collect();
            let cells: Vec<Option<State>> = days
                .iter()
                .map(|d| states.get(d.as_str()).copied())
                .collect();
            let words = match (row.days.last().map(|d| d.state), row.green_since) {
                (Some(State::Green), Some(since)) => format!("Green since {}", day(since)),
                (Some(state), _) => state.to_string(),
                (None, _) => "no history".into(),
            };
            l.trend_row(&row.id, &cells, label, cell, &words);
        }
    }

    // A section per requirement.
    for r in &export.requirements {
        l.page_break();
        l.paragraph(
            &format!("{} — {}", r.id, r.title),
            Face::Bold,
            15.0,
            INK,
            0.0,
        );
        l.gap(4.0);
        l.row(
            &[(0.0, "State".into(), Face::Bold)],
            Some((90.0, r.state)),
            10.0,
        );
        for (label, value) in [
            (
                "Coverage",
                format!("{} intervals with evidence", r.coverage),
            ),
            ("Events in window", r.events_in_window.to_string()),
            (
                "Window",
                format!(
                    "{} to {}",
                    minute(r.window_start),
                    minute(Some(export.generated_at))
                ),
            ),
            ("Last evidence", minute(r.last_evidence_at)),
            ("Green since", minute(r.green_since)),
        ] {
            l.row(
                &[
                    (0.0, label.into(), Face::Bold),
                    (90.0, value, Face::Regular),
                ],
                None,
                10.0,
            );
        }
        l.gap(8.0);
        l.paragraph("Controls", Face::Bold, 11.0, INK, 0.0);
        l.row(
            &[
                (0.0, "Control".into(), Face::Bold),
                (250.0, "Cadence".into(), Face::Bold),
                (300.0, "Intervals".into(), Face::Bold),
                (360.0, "Events".into(), Face::Bold),
                (410.0, "State".into(), Face::Bold),
            ],
            None,
            9.0,
        );
        for c in &r.controls {
            let title = c.title.clone().unwrap_or_else(|| c.name.clone());
            l.row(
                &[
                    (0.0, clip(&title, 48), Face::Regular),
                    (250.0, c.cadence.clone(), Face::Regular),
                    (
                        300.0,
                        format!("{}/{}", c.covered_intervals, c.total_intervals),
                        Face::Regular,
                    ),
                    (360.0, c.events.to_string(), Face::Regular),
                ],
                Some((410.0, c.state)),
                9.0,
            );
            l.paragraph(
                &format!("event types: {}", c.event_types.join(", ")),
                Face::Regular,
                8.0,
                MUTED,
                10.0,
            );
        }
        l.gap(8.0);
        l.paragraph("Query", Face::Bold, 11.0, INK, 0.0);
        if let Some(q) = &r.query {
            l.paragraph(&q.sql, Face::Mono, 7.5, INK, 0.0);
            l.paragraph(
                &format!("parameters: {}", q.parameters.join(", ")),
                Face::Mono,
                7.5,
                MUTED,
                0.0,
            );
        }
        l.gap(8.0);
        let heading = match r.recent_events.len() {
            0 => "Supporting events".to_string(),
            n => format!("Last {n} supporting events"),
        };
        l.paragraph(&heading, Face::Bold, 11.0, INK, 0.0);
        if r.recent_events.is_empty() {
            l.paragraph(
                "No supporting events in the window.",
                Face::Regular,
                9.0,
                MUTED,
                0.0,
            );
        }
        for e in &r.recent_events {
            l.row(
                &[
                    (0.0, minute(Some(e.occurred_at)), Face::Regular),
                    (105.0, clip(&e.event_type, 30), Face::Regular),
                    (
                        255.0,
                        clip(e.actor.as_deref().unwrap_or("—"), 26),
                        Face::Regular,
                    ),
                    (
                        385.0,
                        clip(e.outcome.as_deref().unwrap_or("—"), 12),
                        Face::Regular,
                    ),
                    (440.0, e.hash.chars().take(12).collect(), Face::Mono),
                ],
                None,
                7.5,
            );
        }
    }

    // Signatures.
    l.page_break();
    l.paragraph("Signatures", Face::Bold, 16.0, INK, 0.0);
    l.paragraph(
        "The undersigned confirm that this report was produced from the organisation's evidence store and \
         that the evidence chain head stated on the cover letter identifies the log it was computed from.",
        Face::Regular,
        10.0,
        INK,
        0.0,
    );
    let signatories = if org.signatories.is_empty() {
        vec![super::ExportSignatory {
            name: String::new(),
            title: Some("Authorised signatory".into()),
        }]
    } else {
        org.signatories.clone()
    };
    for s in &signatories {
        l.room(90.0);
        l.gap(50.0);
        l.rule();
        l.row(
            &[
                (0.0, "Signature".into(), Face::Regular),
                (260.0, "Date".into(), Face::Regular),
            ],
            None,
            8.5,
        );
        l.row(&[(0.0, s.name.clone(), Face::Bold)], None, 10.5);
        if let Some(title) = &s.title {
            l.row(&[(0.0, title.clone(), Face::Regular)], None, 9.5);
        }
    }

    let mut doc = PdfDocument::new(&format!("SOC 2 evidence report — {}", org.name));
    let created = printpdf::OffsetDateTime::from_unix_timestamp(export.generated_at.as_second())
        .expect("export instants are valid timestamps");
    doc.metadata.info.creation_date = created;
    doc.metadata.info.modification_date = created;
    doc.metadata.info.metadata_date = created;
    doc.metadata.info.author = org.name.clone();
    doc.metadata.info.creator = "soc2-operator".into();
    doc.metadata.info.producer = "soc2-operator".into();
    doc.metadata.info.subject = format!("SOC 2 evidence, {period}");
    doc.with_pages(l.finish());
    doc.save(&PdfSaveOptions::default(), &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_cuts_long_ones() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\nb", 10), ["a", "b"]);
    }
}
