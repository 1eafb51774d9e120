import Foundation

/// Charts as SVG drawn on the server: no script, no style attribute (the CSP forbids inline style),
/// colours from presentation attributes. Each chart has a title for screen readers, and the pages
/// show the same numbers in a table.
enum ConsoleCharts {
    static let palette = ["#0b5fff", "#1f9d55", "#d97706", "#9333ea", "#dc2626", "#0891b2"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(format: "%.1f", x) }

    /// Horizontal bars, one row per (label, value), scaled to the largest.
    static func bars(_ rows: [(label: String, value: Double)], title: String, width: Int = 520) -> String {
        let rowHeight = 22
        let labelWidth = 130
        let height = rows.count * rowHeight + 6
        let top = max(rows.map(\.value).max() ?? 1, 1)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\"><title>\(escape(title))</title>"
        for (i, row) in rows.enumerated() {
            let y = i * rowHeight + 3
            let w = Int(Double(width - labelWidth - 70) * max(0, row.value) / top)
            svg += "<text x=\"0\" y=\"\(y + 15)\" font-size=\"12\" fill=\"#1b1f24\">\(escape(row.label))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(max(w, 1))\" height=\"16\" rx=\"2\" fill=\"\(palette[i % palette.count])\"/>"
            svg += "<text x=\"\(labelWidth + w + 6)\" y=\"\(y + 15)\" font-size=\"12\" fill=\"#5b6470\">\(number(row.value))</text>"
        }
        return svg + "</svg>"
    }

    /// Grouped bars: for each metric (a row group), one bar per series (variant), with a legend.
    static func grouped(metrics: [String], series: [(name: String, values: [Double])], title: String, width: Int = 560) -> String {
        let barHeight = 12
        let groupHeight = max(series.count, 1) * (barHeight + 2) + 10
        let labelWidth = 110
        let legendHeight = 22
        let height = metrics.count * groupHeight + legendHeight
        let top = max(series.flatMap(\.values).max() ?? 1, 1)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\"><title>\(escape(title))</title>"
        for (s, item) in series.enumerated() {
            let x = s * 120
            svg += "<rect x=\"\(x)\" y=\"4\" width=\"12\" height=\"12\" fill=\"\(palette[s % palette.count])\"/>"
            svg += "<text x=\"\(x + 16)\" y=\"14\" font-size=\"12\" fill=\"#1b1f24\">\(escape(item.name))</text>"
        }
        for (m, metric) in metrics.enumerated() {
            let y0 = legendHeight + m * groupHeight
            svg += "<text x=\"0\" y=\"\(y0 + 14)\" font-size=\"12\" fill=\"#1b1f24\">\(escape(metric))</text>"
            for (s, item) in series.enumerated() {
                let value = m < item.values.count ? item.values[m] : 0
                let w = Int(Double(width - labelWidth - 60) * max(0, value) / top)
                let y = y0 + 4 + s * (barHeight + 2)
                svg += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(max(w, 1))\" height=\"\(barHeight)\" fill=\"\(palette[s % palette.count])\"/>"
                svg += "<text x=\"\(labelWidth + w + 4)\" y=\"\(y + 10)\" font-size=\"10\" fill=\"#5b6470\">\(number(value))</text>"
            }
        }
        return svg + "</svg>"
    }

    /// Each variant's lift against the hold-out as a point with its 95% interval, around zero.
    static func lift(_ rows: [(label: String, low: Double, point: Double, high: Double, significant: Bool)], title: String, width: Int = 520) -> String {
        let rowHeight = 26
        let labelWidth = 110
        let height = rows.count * rowHeight + 24
        let extent = max(rows.flatMap { [abs($0.low), abs($0.high)] }.max() ?? 0.01, 0.001) * 1.1
        let plot = Double(width - labelWidth - 20)
        func x(_ v: Double) -> Int { labelWidth + Int((v + extent) / (2 * extent) * plot) }
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\"><title>\(escape(title))</title>"
        svg += "<line x1=\"\(x(0))\" y1=\"0\" x2=\"\(x(0))\" y2=\"\(height - 18)\" stroke=\"#5b6470\" stroke-dasharray=\"3 3\"/>"
        svg += "<text x=\"\(x(0) - 4)\" y=\"\(height - 4)\" font-size=\"11\" fill=\"#5b6470\">0</text>"
        svg += "<text x=\"\(labelWidth)\" y=\"\(height - 4)\" font-size=\"11\" fill=\"#5b6470\">\(String(format: "%+.1f pp", -extent * 100))</text>"
        svg += "<text x=\"\(width - 60)\" y=\"\(height - 4)\" font-size=\"11\" fill=\"#5b6470\">\(String(format: "%+.1f pp", extent * 100))</text>"
        for (i, r) in rows.enumerated() {
            let y = i * rowHeight + 14
            let colour = r.significant ? (r.point > 0 ? "#1f9d55" : "#dc2626") : "#5b6470"
            svg += "<text x=\"0\" y=\"\(y + 4)\" font-size=\"12\" fill=\"#1b1f24\">\(escape(r.label))</text>"
            svg += "<line x1=\"\(x(r.low))\" y1=\"\(y)\" x2=\"\(x(r.high))\" y2=\"\(y)\" stroke=\"\(colour)\" stroke-width=\"3\"/>"
            svg += "<circle cx=\"\(x(r.point))\" cy=\"\(y)\" r=\"5\" fill=\"\(colour)\"/>"
        }
        return svg + "</svg>"
    }

    /// A small line over time (24 hourly points): the dashboard's sparklines.
    static func sparkline(_ values: [Double], title: String, width: Int = 160, height: Int = 36) -> String {
        let top = max(values.max() ?? 1, 1)
        let step = values.count > 1 ? Double(width - 2) / Double(values.count - 1) : 0
        let points = values.enumerated().map { i, v in String(format: "%.1f,%.1f", 1 + Double(i) * step, Double(height - 2) - (v / top) * Double(height - 4)) }
        return "<svg class=\"spark\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\"><title>\(escape(title))</title>"
            + "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"#0b5fff\" stroke-width=\"1.5\"/></svg>"
    }
}

extension ConsoleCharts {
    struct FlowStep {
        let id: String
        let kind: String
        let detail: String
        let targets: [String]
    }

    /// A journey's steps top to bottom, each a box with its counts; an arrow straight down to the
    /// next box, and a curve on the right to any other target (a branch's else, a `next` jump).
    static func flow(_ steps: [FlowStep], title: String, width: Int = 560) -> String {
        let boxHeight = 46
        let gap = 26
        let boxWidth = 380
        let height = max(steps.count * (boxHeight + gap), 40)
        let index = Dictionary(steps.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        let colours = ["send": "#e8f0ff", "wait": "#fff7e0", "branch": "#f3e8ff", "exit": "#fde7ea"]
        var svg = "<svg class=\"chart flow\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\"><title>\(escape(title))</title>"
        svg += "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#5b6470\"/></marker></defs>"
        for (i, step) in steps.enumerated() {
            let y = i * (boxHeight + gap)
            for (t, target) in step.targets.enumerated() {
                guard let j = index[target] else { continue }
                if j == i + 1, t == 0 {
                    svg += "<line x1=\"\(boxWidth / 2)\" y1=\"\(y + boxHeight)\" x2=\"\(boxWidth / 2)\" y2=\"\(y + boxHeight + gap - 2)\" stroke=\"#5b6470\" marker-end=\"url(#arrow)\"/>"
                } else {
                    let ty = j * (boxHeight + gap) + boxHeight / 2
                    let bend = boxWidth + 30 + 18 * t
                    svg += "<path d=\"M\(boxWidth),\(y + boxHeight / 2) C\(bend),\(y + boxHeight / 2) \(bend),\(ty) \(boxWidth + 2),\(ty)\" fill=\"none\" stroke=\"#9333ea\" stroke-dasharray=\"4 3\" marker-end=\"url(#arrow)\"/>"
                }
            }
            svg += "<rect x=\"1\" y=\"\(y + 1)\" width=\"\(boxWidth - 2)\" height=\"\(boxHeight - 2)\" rx=\"6\" fill=\"\(colours[step.kind] ?? "#f6f8fa")\" stroke=\"#8c959f\"/>"
            svg += "<text x=\"12\" y=\"\(y + 19)\" font-size=\"13\" font-weight=\"700\" fill=\"#1b1f24\">\(escape(step.id)) <tspan font-weight=\"400\" fill=\"#5b6470\">\(escape(step.kind))</tspan></text>"
            svg += "<text x=\"12\" y=\"\(y + 37)\" font-size=\"12\" fill=\"#1b1f24\">\(escape(step.detail))</text>"
        }
        return svg + "</svg>"
    }
}
