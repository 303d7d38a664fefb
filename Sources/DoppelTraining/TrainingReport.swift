// SPDX-License-Identifier: MIT
import DoppelImaging
import DoppelModel
import DoppelNN
import Foundation

/// One self-contained HTML page (inline SVG plots and PNG data URIs, no scripts, no network)
/// about a trained model: loss curve, validation AUC/EER over time, ROC curve, same/different
/// distance histograms with the threshold, a 2-D map of held-out embeddings coloured by
/// identity (PCA above 2-D), and held-out queries with their 9 nearest neighbours.
public enum TrainingReport {
    /// Writes `index.html` into `directory` and returns its path.
    public static func write(model: ModelFile, history: TrainingHistory, calibration: CalibrationRecord, split: DatasetSplit,
                             recipe: TrainingRecipe, into directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let heldOut = split.test.samples.isEmpty ? split.validation : split.test
        let data = TensorDataset(heldOut, spec: recipe.input)
        let embedder = EmbeddingModel(network: model.network, head: model.head, metric: model.metadata.metric, spec: recipe.input)
        let embeddings = embedder.embed(data)
        let (same, different) = embedder.pairDistances(data, embeddings: embeddings, count: 4000, seed: recipe.seed ^ 0x7265_706F)
        let threshold = model.metadata.threshold ?? calibration.threshold
        let metrics = VerificationMetrics(same: same, different: different)

        var html = """
        <!doctype html><html><head><meta charset="utf-8"><title>Doppel model \(model.metadata.modelID)</title>
        <style>body{font-family:sans-serif;margin:2em;max-width:1100px}svg{background:#fff;border:1px solid #ddd;margin:4px}
        figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-size:13px;color:#444}table{border-collapse:collapse}
        td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}img{image-rendering:pixelated;margin:1px}</style></head><body>
        <h1>Doppel model <code>\(model.metadata.modelID)</code></h1>
        <p><code>\(escape(model.network.architecture.description))</code> on \(recipe.input.description); loss \(recipe.loss.rawValue),
        \(recipe.iterations) steps, \(String(format: "%.1f", history.seconds)) s; \(recipe.keepLastWeights == true ? "kept the last step" : "best validation step") \(history.bestStep).</p>
        <table><tr><th>held-out set</th><th>identities</th><th>ROC AUC</th><th>EER</th><th>TAR @ FAR 1e-2</th><th>threshold</th><th>accuracy at threshold</th></tr>
        <tr><td>\(split.test.samples.isEmpty ? "validation" : "test")</td><td>\(data.identityNames.count)</td><td>\(f(metrics.rocAUC))</td>
        <td>\(f(metrics.equalErrorRate))</td><td>\(f(metrics.tarAtFAR1e2))</td><td>\(f(Double(threshold)))</td>
        <td>\(f(VerificationMetrics.accuracy(same: same, different: different, threshold: threshold)))</td></tr></table>
        <p>Threshold: \(escape(model.metadata.thresholdMethod ?? "")).</p>
        """
        let losses = history.losses.enumerated().map { (Double(($0.offset + 1) * history.lossEvery), Double($0.element)) }
        html += figure(linePlot([("training loss", "#1f77b4", losses)], xLabel: "step", yLabel: "loss"), "Training loss (mean per \(history.lossEvery) steps)")
        let auc = history.validations.map { (Double($0.step), $0.rocAUC) }, eer = history.validations.map { (Double($0.step), $0.equalErrorRate) }
        html += figure(linePlot([("ROC AUC", "#2ca02c", auc), ("EER", "#d62728", eer)], xLabel: "step", yLabel: "validation"),
                       "Validation ROC AUC (green) and EER (red)")
        let roc = VerificationMetrics.rocCurve(same: same, different: different).map { ($0.far, $0.tar) }
        html += figure(linePlot([("ROC", "#9467bd", roc), ("chance", "#bbb", [(0, 0), (1, 1)])], xLabel: "false accept rate", yLabel: "true accept rate",
                                fixedRange: true), "ROC curve on held-out pairs (AUC \(f(metrics.rocAUC)))")
        html += figure(histogram(same: same, different: different, threshold: threshold),
                       "Distances of same (green) and different (red) held-out pairs; the threshold in black")
        html += figure(scatter(embeddings: embeddings, dimension: embedder.dimension, identities: data.identities, names: data.identityNames),
                       embedder.dimension == 2 ? "Held-out embeddings, coloured by identity" : "Held-out embeddings (first two principal components), coloured by identity")
        html += "<h2>Nearest neighbours of held-out queries</h2>" + neighbours(heldOut, embedder: embedder, embeddings: embeddings, seed: recipe.seed)
        html += "</body></html>\n"
        let path = (directory as NSString).appendingPathComponent("index.html")
        try Data(html.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }

    static func f(_ value: Double) -> String { String(format: "%.4f", value) }
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
    static func figure(_ svg: String, _ caption: String) -> String { "<figure>\(svg)<figcaption>\(escape(caption))</figcaption></figure>\n" }

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    // A left margin wide enough for tick labels such as 0.000213.
    static let (width, height, margin) = (480.0, 300.0, 56.0)

    /// Axes with ticks at the ends, and one polyline per series.
    static func linePlot(_ series: [(String, String, [(Double, Double)])], xLabel: String, yLabel: String, fixedRange: Bool = false) -> String {
        let points = series.flatMap(\.2)
        guard !points.isEmpty else { return "<svg width=\"\(Int(width))\" height=\"\(Int(height))\"></svg>" }
        var (x0, x1) = (points.map(\.0).min()!, points.map(\.0).max()!)
        var (y0, y1) = (points.map(\.1).min()!, points.map(\.1).max()!)
        if fixedRange { (x0, x1, y0, y1) = (0, 1, 0, 1) }
        if x1 == x0 { x1 = x0 + 1 }
        if y1 == y0 { y1 = y0 + 1 }
        func px(_ x: Double) -> Double { margin + (x - x0) / (x1 - x0) * (width - 2 * margin) }
        func py(_ y: Double) -> Double { height - margin - (y - y0) / (y1 - y0) * (height - 2 * margin) }
        var svg = axes(xLabel: xLabel, yLabel: yLabel, x: (x0, x1), y: (y0, y1))
        for (_, color, values) in series {
            let path = values.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(path)\"/>"
        }
        return svg + "</svg>"
    }

    static func axes(xLabel: String, yLabel: String, x: (Double, Double), y: (Double, Double)) -> String {
        func n(_ v: Double) -> String { abs(v) >= 100 ? String(format: "%.0f", v) : String(format: "%.3g", v) }
        return """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-size="11">
        <line x1="\(margin)" y1="\(height - margin)" x2="\(width - margin)" y2="\(height - margin)" stroke="#333"/>
        <line x1="\(margin)" y1="\(margin)" x2="\(margin)" y2="\(height - margin)" stroke="#333"/>
        <text x="\(margin)" y="\(height - margin + 14)">\(n(x.0))</text><text x="\(width - margin)" y="\(height - margin + 14)" text-anchor="end">\(n(x.1))</text>
        <text x="\(margin - 4)" y="\(height - margin)" text-anchor="end">\(n(y.0))</text><text x="\(margin - 4)" y="\(margin + 4)" text-anchor="end">\(n(y.1))</text>
        <text x="\(width / 2)" y="\(height - 8)" text-anchor="middle">\(escape(xLabel))</text>
        <text x="12" y="\(height / 2)" transform="rotate(-90 12 \(height / 2))" text-anchor="middle">\(escape(yLabel))</text>
        """
    }

    static func histogram(same: [Float], different: [Float], threshold: Float) -> String {
        let all = same + different
        guard let low = all.min(), let high = all.max(), high > low else { return "<svg width=\"\(Int(width))\" height=\"\(Int(height))\"></svg>" }
        let bins = 40
        func counts(_ values: [Float]) -> [Double] {
            var c = [Double](repeating: 0, count: bins)
            for v in values { c[min(bins - 1, Int(Double(v - low) / Double(high - low) * Double(bins)))] += 1 }
            return c.map { $0 / Double(max(1, values.count)) }
        }
        let (s, d) = (counts(same), counts(different))
        let top = max(s.max()!, d.max()!)
        var svg = axes(xLabel: "distance", yLabel: "fraction of pairs", x: (Double(low), Double(high)), y: (0, top))
        let barWidth = (width - 2 * margin) / Double(bins)
        for (values, color) in [(d, "#d62728"), (s, "#2ca02c")] {
            for (i, v) in values.enumerated() where v > 0 {
                let h = v / top * (height - 2 * margin)
                svg += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\" fill-opacity=\"0.5\"/>",
                              margin + Double(i) * barWidth, height - margin - h, barWidth, h, color)
            }
        }
        let tx = margin + Double(threshold - low) / Double(high - low) * (width - 2 * margin)
        svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"2\"/>", tx, margin, tx, height - margin)
        return svg + "</svg>"
    }

    /// 2-D points: the embeddings themselves, or their first two principal components.
    static func project(_ embeddings: [Float], dimension: Int) -> [(Double, Double)] {
        let n = embeddings.count / dimension
        if dimension == 2 { return (0..<n).map { (Double(embeddings[2 * $0]), Double(embeddings[2 * $0 + 1])) } }
        var mean = [Double](repeating: 0, count: dimension)
        for i in 0..<n { for k in 0..<dimension { mean[k] += Double(embeddings[i * dimension + k]) / Double(n) } }
        var covariance = [Double](repeating: 0, count: dimension * dimension)
        for i in 0..<n {
            for a in 0..<dimension {
                let da = Double(embeddings[i * dimension + a]) - mean[a]
                for b in 0..<dimension { covariance[a * dimension + b] += da * (Double(embeddings[i * dimension + b]) - mean[b]) }
            }
        }
        // Power iteration for the top two eigenvectors (deflating the first).
        var components = [[Double]]()
        for c in 0..<2 {
            var v = (0..<dimension).map { Double(($0 * 7 + c * 3) % 11) + 1 }
            for _ in 0..<200 {
                var w = (0..<dimension).map { a in (0..<dimension).reduce(0.0) { $0 + covariance[a * dimension + $1] * v[$1] } }
                for u in components { let dot = zip(w, u).reduce(0.0) { $0 + $1.0 * $1.1 }; w = zip(w, u).map { $0 - dot * $1 } }
                let norm = w.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0 else { break }
                v = w.map { $0 / norm }
            }
            components.append(v)
        }
        return (0..<n).map { i in
            let centred = (0..<dimension).map { Double(embeddings[i * dimension + $0]) - mean[$0] }
            return (zip(centred, components[0]).reduce(0.0) { $0 + $1.0 * $1.1 }, zip(centred, components[1]).reduce(0.0) { $0 + $1.0 * $1.1 })
        }
    }

    static func scatter(embeddings: [Float], dimension: Int, identities: [Int], names: [String]) -> String {
        let points = project(embeddings, dimension: dimension)
        guard !points.isEmpty else { return "" }
        let step = max(1, points.count / 3000)
        let shown = stride(from: 0, to: points.count, by: step).map { $0 }
        let xs = shown.map { points[$0].0 }, ys = shown.map { points[$0].1 }
        let (x0, x1, y0, y1) = (xs.min()!, max(xs.max()!, xs.min()! + 1e-9), ys.min()!, max(ys.max()!, ys.min()! + 1e-9))
        var svg = axes(xLabel: dimension == 2 ? "embedding 1" : "PC 1", yLabel: dimension == 2 ? "embedding 2" : "PC 2", x: (x0, x1), y: (y0, y1))
        for i in shown {
            let x = margin + (points[i].0 - x0) / (x1 - x0) * (width - 2 * margin)
            let y = height - margin - (points[i].1 - y0) / (y1 - y0) * (height - 2 * margin)
            svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%@\" fill-opacity=\"0.6\"/>", x, y, palette[identities[i] % palette.count])
        }
        for (index, name) in names.prefix(10).enumerated() {
            svg += "<text x=\"\(width - margin + 2)\" y=\"\(margin + Double(index) * 13)\" fill=\"\(palette[index % palette.count])\" font-size=\"10\">\(escape(String(name.suffix(14))))</text>"
        }
        return svg.replacingOccurrences(of: "width=\"\(Int(width))\"", with: "width=\"\(Int(width) + 90)\"") + "</svg>"
    }

    /// Six queries, each followed by its nine nearest held-out samples (green border: same identity).
    static func neighbours(_ dataset: Dataset, embedder: EmbeddingModel, embeddings: [Float], seed: UInt64) -> String {
        var generator = SeededGenerator(seed: seed ^ 0x6E65_6967)
        let n = dataset.samples.count
        guard n > 1 else { return "" }
        func thumbnail(_ image: Image, border: String) -> String {
            let scale = 48.0 / Double(max(image.width, image.height))
            let small = image.converted(to: image.layout.isColor ? .rgb : .gray)
                .resized(width: max(1, Int(Double(image.width) * scale)), height: max(1, Int(Double(image.height) * scale)))
            return "<img style=\"border:2px solid \(border)\" src=\"data:image/png;base64,\(Data(PNGEncoder.encode(small)).base64EncodedString())\">"
        }
        var html = ""
        embeddings.withUnsafeBufferPointer { e in
            for _ in 0..<6 {
                let q = Int(generator.next() % UInt64(n))
                let nearest = (0..<n).filter { $0 != q }.map { ($0, embedder.distance(e.baseAddress!, q, $0)) }.sorted { $0.1 < $1.1 }.prefix(9)
                html += "<div>" + thumbnail(dataset.samples[q].image, border: "#000") + " &rarr; "
                html += nearest.map { thumbnail(dataset.samples[$0.0].image, border: dataset.samples[$0.0].identity == dataset.samples[q].identity ? "#2ca02c" : "#d62728") }.joined()
                html += "</div>\n"
            }
        }
        return html
    }
}
