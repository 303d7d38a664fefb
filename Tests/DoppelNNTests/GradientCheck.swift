// SPDX-License-Identifier: MIT
@testable import DoppelNN

/// Central finite differences against a scalar function, accumulated in Double.
///
/// The tolerance on the relative error |numeric - analytic| / (|numeric| + |analytic|),
/// floored at 1e-2: a central difference with step e is off by e^2 |f'''| / 6 (1e-6 relative
/// for e = 1e-3 and the smooth losses here; a kink of ReLU or max within e of a point costs
/// more, which the seeds avoid) plus the float32 rounding of the loss over the step, about
/// u sum |y_i w_i| / e: 6e-8 x 30 / 1e-3 = 2e-3 absolute for these losses of tens of terms,
/// under 1e-2 against the floor. Deep graphs (`LayerGradientTests`) sum more rounding and use
/// e = 3e-3 with twice the tolerance.
enum GradientCheck {
    /// The relative error a correct gradient stays under (see above); 2x for deep graphs.
    static let tolerance = 1e-2
    struct Report: CustomStringConvertible {
        var checked = 0
        /// max over elements of |numeric - analytic| / max(|numeric| + |analytic|, floor)
        var maxRelativeError = 0.0
        var worst = ""
        var description: String { "\(checked) elements, max relative error \(maxRelativeError) \(worst)" }

        mutating func compare(numeric: Double, analytic: Double, label: String, floor: Double = 1e-2) {
            let error = abs(numeric - analytic) / max(abs(numeric) + abs(analytic), floor)
            checked += 1
            if error > maxRelativeError {
                maxRelativeError = error
                worst = "(\(label): numeric \(numeric), analytic \(analytic))"
            }
        }
    }

    /// Numeric derivative of `f` with respect to `values[index]`, restoring it afterwards.
    static func derivative(_ values: UnsafeMutablePointer<Float>, at index: Int, epsilon: Float, _ f: () -> Double) -> Double {
        let saved = values[index]
        values[index] = saved + epsilon
        let plus = f()
        values[index] = saved - epsilon
        let minus = f()
        values[index] = saved
        return (plus - minus) / (2 * Double(epsilon))
    }

    /// Checks dL/dx and dL/dparameters of `network` for L = sum(y * weights) with random
    /// weights, at up to `maxElements` positions of each.
    static func check(_ network: Network, batch: Int, seed: UInt64 = 1, epsilon: Float = 1e-3,
                      maxElements: Int = 60) -> (input: Report, parameters: Report) {
        var generator = SeededGenerator(seed: seed)
        var x = (0..<(batch * network.inputShape.count)).map { _ in generator.nextGaussian() }
        let outputWeights = (0..<(batch * network.outputShape.count)).map { _ in generator.nextGaussian() }
        func loss() -> Double {
            let y = x.withUnsafeBufferPointer { network.forward($0.baseAddress!, batch: batch, mode: .training) }
            return zip(y, outputWeights).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        _ = loss()
        network.freezeDropoutMasks()
        network.zeroGradients()
        _ = loss()
        let dx = x.withUnsafeBufferPointer { xp in
            outputWeights.withUnsafeBufferPointer { network.backward(xp.baseAddress!, dOutput: $0.baseAddress!, batch: batch, wantInputGradient: true)! }
        }
        let dParameters = Array(network.gradients)

        var inputReport = Report()
        let inputStride = max(1, x.count / maxElements)
        for i in stride(from: 0, to: x.count, by: inputStride) {
            let numeric = x.withUnsafeMutableBufferPointer { pointer in
                // `loss` reads `x` through its own access; copy the pointer's effect by value.
                let p = pointer.baseAddress!
                return derivative(p, at: i, epsilon: epsilon) {
                    let y = network.forward(UnsafePointer(p), batch: batch, mode: .training)
                    return zip(y, outputWeights).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                }
            }
            inputReport.compare(numeric: numeric, analytic: Double(dx[i]), label: "x[\(i)]")
        }
        var parameterReport = Report()
        let parameters = network.parameters.baseAddress!
        let parameterStride = max(1, network.parameterCount / maxElements)
        for i in stride(from: 0, to: network.parameterCount, by: parameterStride) {
            let numeric = x.withUnsafeBufferPointer { xp in
                derivative(parameters, at: i, epsilon: epsilon) {
                    let y = network.forward(xp.baseAddress!, batch: batch, mode: .training)
                    return zip(y, outputWeights).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                }
            }
            parameterReport.compare(numeric: numeric, analytic: Double(dParameters[i]), label: "parameter[\(i)]")
        }
        return (inputReport, parameterReport)
    }
}
